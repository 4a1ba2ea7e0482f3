"""Passkeys (WebAuthn) as a factor: registering one, and checking an assertion, through py_webauthn.

Every ceremony starts with an options function that stores a challenge and returns (options JSON for the
browser, handle for the cookie session); the finishing function takes the challenge back by that handle.
Services commit at their end; taking a challenge commits at once, so a refused response still burns it.
"""

from __future__ import annotations

import secrets

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from db.events import Owner
from db.factors import challenges
from db.factors.passkey_store import (
    InvalidPasskeyName,
    PasskeyError,
    PasskeyNotFound,
    PasskeyRejected,
    RegistrationFailed,
    advance_counter,
    count_passkeys,
    credentials_of,
    list_passkeys,
    reason_for,
    remove_all,
    remove_passkey,
    rename_passkey,
    user_handle_of,
)
from db.factors.relying_party import clean_name, provider_name, relying_party
from db.models import PasskeyCredential

__all__ = [
    "InvalidPasskeyName",
    "PasskeyError",
    "PasskeyNotFound",
    "PasskeyRejected",
    "RegistrationFailed",
    "authentication_options",
    "count_passkeys",
    "list_passkeys",
    "register",
    "registration_options",
    "relying_party",
    "remove_all",
    "remove_passkey",
    "rename_passkey",
    "verify_assertion",
]

TIMEOUT_MS = 300_000  # the challenge lives 5 minutes; the browser's prompt may not outlast it
AUTH_PURPOSES = ("second_step", "step_up", "sign_in")


def _descriptors(session: Session, user_id: int) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=base64url_to_bytes(c.credential_id),
            transports=[AuthenticatorTransport(t) for t in c.transports.split(",") if t] or None,
        )
        for c in credentials_of(session, user_id)
    ]


def registration_options(session: Session, *, user: Owner, rp_id: str, rp_name: str) -> tuple[str, str]:
    """Options for navigator.credentials.create(): a discoverable credential, so it can sign in with no email,
    and never one of the member's authenticators again (excludeCredentials)."""
    assert user.id is not None
    handle_b64 = user_handle_of(session, user.id) or bytes_to_base64url(secrets.token_bytes(32))
    handle, challenge = challenges.issue(session, purpose="register", user_id=user.id, user_handle=handle_b64)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=rp_name,
        user_name=user.email,
        user_id=base64url_to_bytes(handle_b64),
        challenge=challenge,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(session, user.id),
    )
    session.commit()
    return options_to_json(options), handle


def register(
    session: Session, *, user: Owner, handle: str, response_json: str, name: str = "", rp_id: str, origin: str
) -> PasskeyCredential:
    """Verify the browser's attestation and store the passkey; `name` empty means the provider's name."""
    given = clean_name(name) if name.strip() else None
    if name.strip() and given is None:
        raise InvalidPasskeyName()
    taken = challenges.take(session, handle=handle, purpose="register", user_id=user.id)
    if taken is None:
        raise RegistrationFailed("challenge")
    try:
        parsed = parse_registration_credential_json(response_json)
        verified = verify_registration_response(
            credential=parsed, expected_challenge=taken.challenge, expected_rp_id=rp_id, expected_origin=origin
        )
    except WebAuthnException as exc:
        raise RegistrationFailed("invalid_response", str(exc)) from exc
    credential_id = bytes_to_base64url(verified.credential_id)
    if session.exec(select(PasskeyCredential.id).where(PasskeyCredential.credential_id == credential_id)).first():
        raise RegistrationFailed("credential_exists")
    row = PasskeyCredential(
        user_id=user.id or 0,
        credential_id=credential_id,
        user_handle=taken.user_handle,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=",".join(t.value for t in parsed.response.transports or []),
        aaguid=verified.aaguid,
        name=given or provider_name(verified.aaguid),
        backed_up=verified.credential_backed_up,
    )
    session.add(row)
    try:
        session.commit()
    except IntegrityError as exc:  # the same credential registered at the same moment by another request
        session.rollback()
        raise RegistrationFailed("credential_exists") from exc
    return row


def authentication_options(
    session: Session, *, user: Owner | None, purpose: str, rp_id: str, user_verification: str | None = None
) -> tuple[str, str]:
    """Options for navigator.credentials.get(). A known member is offered their own passkeys, user verification
    preferred; sign-in with no email (`user` None) lists none, so the browser offers discoverable ones, and
    requires user verification: the passkey is then the only factor."""
    if purpose not in AUTH_PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    uv = user_verification or ("required" if user is None else "preferred")
    allow = _descriptors(session, user.id) if user is not None and user.id is not None else []
    handle, challenge = challenges.issue(session, purpose=purpose, user_id=user.id if user else None)
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=allow,
        user_verification=UserVerificationRequirement(uv),
    )
    session.commit()
    return options_to_json(options), handle


def verify_assertion(
    session: Session,
    *,
    user: Owner | None,
    purpose: str,
    handle: str,
    response_json: str,
    rp_id: str,
    origin: str,
    require_uv: bool = False,
) -> tuple[int, PasskeyCredential]:
    """Check an assertion against the challenge behind `handle`; (owner's user id, credential) when good.

    Without `user` (sign-in with no email) user verification is required whatever `require_uv` says."""
    require_uv = require_uv or user is None
    user_id = user.id if user is not None else None
    taken = challenges.take(session, handle=handle, purpose=purpose, user_id=user_id)
    if taken is None:
        raise PasskeyRejected("challenge", user_id=user_id)
    try:
        parsed = parse_authentication_credential_json(response_json)
    except WebAuthnException as exc:
        raise PasskeyRejected("malformed", str(exc), user_id=user_id) from exc
    row = session.exec(select(PasskeyCredential).where(PasskeyCredential.credential_id == parsed.id)).first()
    if row is None or (user is not None and row.user_id != user.id):
        raise PasskeyRejected("unknown_credential", user_id=user_id)
    try:
        # The library's own counter check is given 0 so that it always passes: ours below runs only after the
        # signature has verified, so nobody without the private key can raise a clone alarm.
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=taken.challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=row.public_key,
            credential_current_sign_count=0,
            require_user_verification=require_uv,
        )
    except WebAuthnException as exc:
        raise PasskeyRejected(reason_for(str(exc)), str(exc), user_id=row.user_id) from exc
    _check_user_handle(row, parsed.response.user_handle, discoverable=user is None)
    advance_counter(session, row, verified.new_sign_count, verified.credential_backed_up)
    return row.user_id, row


def _check_user_handle(row: PasskeyCredential, user_handle: bytes | None, *, discoverable: bool) -> None:
    """WebAuthn L3 §7.2 step 6: the user handle, when given (always, for a discoverable sign-in), names the owner."""
    if user_handle is None and not discoverable:
        return
    if user_handle is None or not secrets.compare_digest(user_handle, base64url_to_bytes(row.user_handle)):
        raise PasskeyRejected("user_handle_mismatch", user_id=row.user_id)

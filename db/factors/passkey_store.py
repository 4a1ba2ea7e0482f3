"""A member's stored passkeys: listing, renaming, removing, the signature counter, and the errors the passkey
services raise."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from db.clock import now
from db.factors.relying_party import NAME_MAX, clean_name
from db.i18n import _
from db.models import PasskeyCredential
from db.sql import affected

PASSKEY_REJECTED = _("That passkey wasn't accepted. Try again, or use another way to confirm it's you.")
REGISTRATION_FAILED = _("The passkey couldn't be added. Try again, or use another device.")
INVALID_NAME = _("Give the passkey a name of 1 to %(max)d characters.", max=NAME_MAX)
PASSKEY_NOT_FOUND = _("That passkey isn't there any more.")


class PasskeyError(Exception):
    """A refusal with one message for the member; `reason` and `detail` are for the log only."""

    message = REGISTRATION_FAILED
    status = 422

    def __init__(self, reason: str = "", detail: str = "", *, user_id: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.detail, self.user_id = reason, detail[:200], user_id


class PasskeyRejected(PasskeyError):
    """An assertion that did not verify, for whatever reason: unknown or removed credential, wrong origin,
    replayed or expired challenge, missing user verification, counter gone back. `user_id` is the account the
    failure counts against (None for an unknown credential at sign-in); `clone_suspected` asks for an alert."""

    message = PASSKEY_REJECTED

    @property
    def clone_suspected(self) -> bool:
        return self.reason == "passkey_clone_suspected"


class RegistrationFailed(PasskeyError):
    """An attestation that did not verify, an unusable challenge, or a credential already registered."""


class InvalidPasskeyName(PasskeyError):
    message = INVALID_NAME


class PasskeyNotFound(PasskeyError):
    """Not this member's passkey (or already removed): the same answer either way."""

    message = PASSKEY_NOT_FOUND
    status = 404


def credentials_of(session: Session, user_id: int) -> Sequence[PasskeyCredential]:
    return session.exec(
        select(PasskeyCredential).where(PasskeyCredential.user_id == user_id).order_by(col(PasskeyCredential.id))
    ).all()


def user_handle_of(session: Session, user_id: int) -> str | None:
    """The WebAuthn user handle the member's passkeys share, so a new one on the same authenticator replaces
    rather than doubles an account entry; None before the first passkey."""
    return session.exec(select(PasskeyCredential.user_handle).where(PasskeyCredential.user_id == user_id)).first()


def list_passkeys(session: Session, *, user_id: int) -> Sequence[PasskeyCredential]:
    """The member's passkeys, oldest first."""
    return credentials_of(session, user_id)


def count_passkeys(session: Session, *, user_id: int) -> int:
    return session.exec(select(func.count()).where(PasskeyCredential.user_id == user_id)).one()


def _own(session: Session, *, user_id: int, passkey_id: int) -> PasskeyCredential:
    row = session.get(PasskeyCredential, passkey_id)
    if row is None or row.user_id != user_id:
        raise PasskeyNotFound(user_id=user_id)
    return row


def rename_passkey(session: Session, *, user_id: int, passkey_id: int, name: str) -> PasskeyCredential:
    """Rename one of the member's passkeys (1–64 characters, no control characters)."""
    cleaned = clean_name(name)
    if cleaned is None:
        raise InvalidPasskeyName(user_id=user_id)
    row = _own(session, user_id=user_id, passkey_id=passkey_id)
    row.name = cleaned
    session.add(row)
    session.commit()
    return row


def remove_passkey(session: Session, *, user_id: int, passkey_id: int) -> PasskeyCredential:
    """Remove one of the member's passkeys; returns it (detached) so the caller can name it in the log."""
    row = _own(session, user_id=user_id, passkey_id=passkey_id)
    session.delete(row)
    session.commit()
    return row


def remove_all(session: Session, user_id: int) -> int:
    """Remove every passkey of the member ("Reset MFA"); does not commit, so it joins the reset's transaction."""
    removed = session.execute(delete(PasskeyCredential).where(col(PasskeyCredential.user_id) == user_id))
    return affected(removed)


def advance_counter(session: Session, row: PasskeyCredential, new: int, backed_up: bool) -> None:
    """Refuse a counter that did not go up (when the authenticator counts at all); store it in one conditional
    UPDATE, so two assertions racing with the same count can't both pass."""
    stored = row.sign_count
    if (new or stored) and new <= stored:
        raise PasskeyRejected("passkey_clone_suspected", f"counter {new} after {stored}", user_id=row.user_id)
    moved = session.execute(
        update(PasskeyCredential)
        .where(col(PasskeyCredential.id) == row.id, col(PasskeyCredential.sign_count) == stored)
        .values(sign_count=new, last_used_at=now(), backed_up=backed_up)
    )
    if affected(moved) != 1:
        session.rollback()
        raise PasskeyRejected("passkey_clone_suspected", "counter raced", user_id=row.user_id)
    session.commit()
    session.refresh(row)


def reason_for(message: str) -> str:
    """A short label for the log from py_webauthn's message; the member sees one message whatever it is."""
    for needle, reason in (
        ("origin", "wrong_origin"),
        ("User verification", "uv_missing"),
        ("challenge", "wrong_challenge"),
        ("RP ID", "wrong_rp_id"),
        ("signature", "bad_signature"),
        ("not present", "up_missing"),
    ):
        if needle in message:
            return reason
    return "invalid_response"

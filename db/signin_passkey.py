"""Signing in with a passkey alone (no email, no password): a discoverable credential with user verification.

Kept apart from db/signin.py because its refusals differ: every one reads as a wrong password
(security requirement 55), and it is throttled per client address before the account is known.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import NoReturn

from sqlmodel import Session

from db import care, events, links, sessions, throttle
from db.clock import now
from db.errors import InvalidCredentials
from db.events import Actor
from db.factors import passkeys
from db.models import Throttle, User
from db.signin import Finished, complete


@dataclass(frozen=True)
class SignInPage:
    empty: bool  # nobody has an account yet: the page points to the set-up link
    options: str  # WebAuthn request options (JSON) for a discoverable passkey
    handle: str  # the challenge's handle, kept in the cookie session


def sign_in_page(session: Session, *, rp_id: str) -> SignInPage:
    """What the sign-in page needs, in one service (one worker-thread hop and one database session): whether
    the instance is empty, and a fresh challenge for signing in with a passkey alone."""
    options, handle = passkeys.authentication_options(session, user=None, purpose="sign_in", rp_id=rp_id)
    return SignInPage(links.instance_is_empty(session), options, handle)


def sign_in_with_passkey(
    session: Session,
    *,
    handle: str,
    response_json: str,
    rp_id: str,
    origin: str,
    actor: Actor,
    replaces: str | None,
    checkup_days: int = 0,
) -> Finished:
    """Passwordless sign-in: a discoverable passkey, user verification required, is the only factor.

    Throttled per client address before the check, and per account once the credential names one. Every
    refusal (unknown or removed credential, wrong origin, no user verification, replayed challenge) is the
    wrong-password answer, so the button tells nobody which credentials exist (security requirement 55).
    The 2FA check-up is decided here as after the second step."""
    try:
        throttle.take_attempts(session, [(throttle.client_key(actor.ip), throttle.CLIENT)])
    except throttle.Throttled:
        events.record(session, "throttled", actor=actor, target_label=actor.ip, outcome="failure", detail="passkey")
        session.commit()
        raise
    try:
        user_id, _ = passkeys.verify_assertion(
            session,
            user=None,
            purpose="sign_in",
            handle=handle,
            response_json=response_json,
            rp_id=rp_id,
            origin=origin,
        )
    except passkeys.PasskeyRejected as rejected:
        _passkey_refused(session, rejected, actor=actor)
    user = session.get(User, user_id)
    key = throttle.user_key(user_id)
    if user is None or throttle.is_hard_locked(session, key) or _locked(session, key):
        raise InvalidCredentials()
    if replaces:
        sessions.end(session, token=replaces)
    throttle.succeeded(session, key, client=throttle.client_key(actor.ip))
    due = care.checkup_due(session, user=user, days=checkup_days)
    return Finished(complete(session, user=user, actor=actor, factor="passkey"), checkup=due)


def _locked(session: Session, key: str) -> bool:
    """The account's second-factor lock holds for passkeys too: a good passkey doesn't lift it early."""
    row = session.get(Throttle, key)
    return row is not None and row.locked_until is not None and row.locked_until > now()


def _passkey_refused(session: Session, rejected: passkeys.PasskeyRejected, *, actor: Actor) -> NoReturn:
    user = session.get(User, rejected.user_id) if rejected.user_id else None
    detail = f"factor=passkey purpose=passwordless reason={rejected.reason}"
    if user is not None:  # the account is known: the failure counts against it like a wrong code
        with contextlib.suppress(throttle.Throttled):
            throttle.take_attempts(session, [(throttle.user_key(user.id or 0), throttle.SECOND_FACTOR)])
        if rejected.clone_suspected:
            events.record(
                session, "passkey_clone_suspected", actor=actor, target=user, outcome="failure", detail=detail
            )
    events.record(
        session, "sign_in_failed", actor=actor, target=user, target_label=actor.ip, outcome="failure", detail=detail
    )
    session.commit()
    raise InvalidCredentials()

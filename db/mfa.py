"""Changing a member's multi-factor authentication: enrolling the authenticator, turning MFA off, new
backup codes, an admin's or the operator's reset.

Each change ends the member's other sessions (pending sign-ins too), is logged, and queues a notice; the
acting session continues on a new token, returned as `session_token` for the caller to put in the cookie.
The service that changes state commits at its end; a refusal commits only its own record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from db import care, events, notices, sessions, throttle
from db.crypto import Keyring
from db.errors import DomainError, IncorrectCode
from db.events import Actor, Owner
from db.factors import count_attempt, recovery_codes, refuse, remove_all, totp, verify_second_factor
from db.i18n import _


class MfaRequired(DomainError):
    message = _("Your organization requires multi-factor authentication for your role, so it can't be turned off.")


class MfaOff(DomainError):
    message = _("Turn on multi-factor authentication first.")


@dataclass(frozen=True)
class Changed:
    """What an MFA change hands back: the acting session's new token, and new backup codes (if any)."""

    session_token: str | None
    codes: list[str] = field(default_factory=list)


def confirm_totp(
    session: Session,
    *,
    user: Owner,
    sealed: str,
    code: str,
    keyring: Keyring,
    ttl: int,
    actor: Actor,
    at: float | None = None,
) -> Changed:
    """Store the authenticator once a code from it matches; returns the first backup codes."""
    secret = totp.open_enrolment(keyring, sealed, user_id=user.id or 0, ttl=ttl)
    lock = count_attempt(session, user=user, actor=actor, exempt=False)
    if not totp.add(session, user_id=user.id or 0, secret=secret, code=code, keyring=keyring, at=at):
        refuse(
            session,
            user=user,
            actor=actor,
            detail="factor=totp purpose=enrolment",
            outcome="wrong",
            lock=lock,
            error=IncorrectCode(),
        )
    codes = recovery_codes.replace(session, user_id=user.id or 0)
    # As after a sign-in: an office of agents enrolling behind one address never uses up its allowance.
    throttle.succeeded(session, throttle.user_key(user.id or 0), client=throttle.client_key(actor.ip))
    return _changed(
        session,
        user=user,
        actor=actor,
        kind="mfa_enabled",
        codes=codes,
        text=_("Multi-factor authentication was turned on for your account"),
    )


def disable(
    session: Session,
    *,
    user: Owner,
    method: str,
    code: str,
    keyring: Keyring,
    required: bool,
    actor: Actor,
    at: float | None = None,
) -> Changed:
    """Turn MFA off, proven by a current code or a backup code; refused while the org policy requires it."""
    if required:
        raise MfaRequired()
    verify_second_factor(
        session, user=user, method=method, code=code, keyring=keyring, actor=actor, purpose="disable", at=at
    )
    remove_all(session, user_id=user.id or 0, keep_passkeys=True)
    return _changed(
        session,
        user=user,
        actor=actor,
        kind="mfa_disabled",
        text=_("Multi-factor authentication was turned off for your account"),
    )


def regenerate_recovery_codes(session: Session, *, user: Owner, enabled: bool, actor: Actor) -> Changed:
    """A new set of backup codes; every earlier code stops working. Step-up was checked by the route."""
    if not enabled:
        raise MfaOff()
    codes = recovery_codes.replace(session, user_id=user.id or 0)
    return _changed(
        session,
        user=user,
        actor=actor,
        kind="backup_codes_regenerated",
        codes=codes,
        text=_("New backup codes were made; the old ones no longer work"),
    )


def reset_mfa(session: Session, *, user: Owner, actor: Actor, reason: str) -> None:
    """An admin or the operator removes a member's second factors (lost device) and ends all their sessions."""
    remove_all(session, user_id=user.id or 0)
    sessions.end_others(session, user_id=user.id or 0, keep=None)
    throttle.clear(session, throttle.user_key(user.id or 0))
    events.record(session, "mfa_reset", actor=actor, target=user, detail=f"reason={reason}"[:255])
    notices.add(
        session,
        user=user,
        text=_("Your multi-factor authentication was reset by %(who)s", who=actor.label),
        actor=actor,
    )
    session.commit()


def _changed(
    session: Session, *, user: Owner, actor: Actor, kind: str, text: str, codes: list[str] | None = None
) -> Changed:
    """Log and notify an MFA change; every other browser signs in again, this one gets a new token. Commits."""
    events.record(session, kind, actor=actor, target=user)
    notices.add(session, user=user, text=text, actor=actor)
    if codes:
        care.codes_unsaved(session, user_id=user.id or 0)
    sessions.end_others(session, user_id=user.id or 0, keep=actor.session_id)
    token = sessions.rotate(session, session_id=actor.session_id, verified=False) if actor.session_id else None
    session.commit()
    return Changed(session_token=token, codes=codes or [])

"""Signing in, in one vocabulary: `begin` takes the password, `finish` the second factor, `confirm` is
"Confirm it's you" later on, `sign_out` and `sign_out_others` end sessions.

Only a second-factor check (or, for a member without one, the password at the "Confirm it's you" prompt)
marks a session as recently verified; nothing else does (security requirement 40).
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlalchemy import bindparam
from sqlmodel import Session, select

from db import care, devices, events, notices, password_step, sessions, users
from db.crypto import Keyring
from db.errors import DomainError, NotFound
from db.events import Actor
from db.factors import Ceremony, verify_second_factor
from db.i18n import _, ngettext
from db.member import Member
from db.models import OrgPolicy, PasskeyCredential, TotpDevice, User


class SecondStepExpired(DomainError):
    message = _("That took too long. Sign in again.")


@dataclass(frozen=True)
class Begun:
    """The password was right: the new session's token, and whether a second step must still finish it."""

    session_token: str
    pending: bool


@dataclass(frozen=True)
class Finished:
    """The second step passed: the session's token, a remembered browser's token and days (if asked), and
    whether the 2FA check-up is due (asked before going on)."""

    session_token: str
    remember_token: str | None = None
    remember_days: int = 0
    checkup: bool = False


def begin(
    session: Session,
    *,
    email: str,
    password: str,
    hasher: PasswordHasher,
    actor: Actor,
    replaces: str | None,
    remembered: str | None = None,
) -> Begun:
    """The password step. A sign-in over a live session ends that session (an old copy of its cookie dies).
    A browser remembered for this member, while the policy allows it, skips the second step: its session
    starts unverified, so "Confirm it's you" still asks for a second factor."""
    user = password_step.check(session, email=email, password=password, hasher=hasher, actor=actor)
    if replaces:
        sessions.end(session, token=replaces)
    if _has_second_factor(session, user_id=user.id or 0):
        if devices.recognise(session, user=user, token=remembered):
            token = complete(session, user=user, actor=actor, factor="remembered_browser", verified=False)
            return Begun(token, pending=False)
        token = sessions.start(session, user=user, ip=actor.ip, user_agent=actor.user_agent, pending=True)
        session.commit()
        return Begun(token, pending=True)
    return Begun(complete(session, user=user, actor=actor, factor="password"), pending=False)


def finish(
    session: Session,
    *,
    token: str,
    ttl: int,
    method: str,
    code: str,
    keyring: Keyring,
    actor: Actor,
    at: float,
    remember: bool = False,
    ceremony: Ceremony | None = None,
    checkup_days: int = 0,
) -> Finished:
    """The second step of a pending sign-in, checked against the server: a pending session that a password
    change, an MFA change or a reset ended is gone. `remember` is honoured only as far as the org policy
    allows it for the member's role now (a forged field does nothing). The check-up is decided here, once
    per sign-in, so no request afterwards needs to ask."""
    user = sessions.load_pending(session, token=token, ttl=ttl)
    if user is None:
        raise SecondStepExpired()
    factor = verify_second_factor(
        session,
        user=user,
        method=method,
        code=code,
        keyring=keyring,
        actor=actor,
        purpose="sign_in",
        at=at,
        ceremony=ceremony,
    )
    days = devices.allowed_days(session.get(OrgPolicy, 1), role=user.role) if remember else 0
    kept = devices.remember(session, user=user, days=days, actor=actor) if days else None
    due = care.checkup_due(session, user=user, days=checkup_days)
    started = complete(session, user=user, actor=actor, factor=factor, pending=token)
    return Finished(started, kept, days, checkup=due)


def confirm(
    session: Session,
    *,
    member: Member,
    method: str,
    secret: str,
    keyring: Keyring,
    hasher: PasswordHasher,
    actor: Actor,
    at: float,
    ceremony: Ceremony | None = None,
) -> str:
    """ "Confirm it's you": a second factor again (without MFA, the password); returns a new token."""
    user = member.user
    if member.mfa_enabled:
        verify_second_factor(
            session,
            user=user,
            method=method,
            code=secret,
            purpose="step_up",
            keyring=keyring,
            actor=actor,
            at=at,
            ceremony=ceremony,
        )
    else:
        users.recheck_password(
            session, user_id=user.id, password=secret, hasher=hasher, actor=actor, field="reauth_secret"
        )
    token = sessions.rotate(session, session_id=member.auth.id, verified=True)
    events.record(session, "step_up", actor=actor, target=user)
    session.commit()
    return token


def _has_second_factor(session: Session, *, user_id: int) -> bool:
    return session.execute(_SECOND_FACTOR, {"user_id": user_id}).first() is not None


_SECOND_FACTOR = (
    select(TotpDevice.id)
    .where(TotpDevice.user_id == bindparam("user_id"))
    .union_all(select(PasskeyCredential.id).where(PasskeyCredential.user_id == bindparam("user_id")))
    .limit(1)
)


def complete(
    session: Session, *, user: User, actor: Actor, factor: str, verified: bool = True, pending: str | None = None
) -> str:
    """Start the session (the `pending` one of the second step continues, on a new token), log it, and tell
    the member of failed second-factor attempts since last time."""
    failed = events.failures_since(session, user_id=user.id or 0, since=user.last_sign_in_at)
    if failed:
        text = (
            ngettext(
                "%(num)d failed attempt to verify your identity since your last sign-in",
                "%(num)d failed attempts to verify your identity since your last sign-in",
                failed,
            )
            if user.last_sign_in_at
            else ngettext(
                "%(num)d failed attempt to verify your identity",
                "%(num)d failed attempts to verify your identity",
                failed,
            )
        )
        notices.add(session, user=user, text=text)
    if pending:
        try:
            token = sessions.rotate(session, token=pending, verified=True, fresh=True)
        except LookupError as gone:  # ended meanwhile (a password change, a reset): nothing is signed in
            raise SecondStepExpired() from gone
    else:
        token = sessions.start(session, user=user, ip=actor.ip, user_agent=actor.user_agent, verified=verified)
    users.mark_signed_in(session, user=user, actor=actor, factor=factor)
    session.commit()
    return token


def sign_out(session: Session, *, token: str, actor: Actor) -> None:
    sessions.end(session, token=token)
    events.record(session, "sign_out", actor=actor, target_label=actor.label)
    session.commit()


def sign_out_session(session: Session, *, member: Member, session_id: int, actor: Actor) -> None:
    """End one of the member's other sessions: its next request finds no row and is signed out."""
    if not sessions.end_one(session, user_id=member.user.id, session_id=session_id, keep=member.auth.id):
        raise NotFound()
    events.record(session, "session_ended", actor=actor, target=member.user, detail=f"session={session_id}")
    session.commit()


def sign_out_others(session: Session, *, member: Member, actor: Actor) -> int:
    """End every other session and forget every remembered browser (this one's too)."""
    ended = sessions.end_others(session, user_id=member.user.id, keep=member.auth.id)
    events.record(session, "sessions_revoked", actor=actor, target=member.user, detail=f"ended={ended}")
    session.commit()
    return ended

"""Signing in, step by step: the password, then the second factor, and re-authentication later on."""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from sqlmodel import Session, select

from db import events, mfa, notices, passwords, signins, throttle, users
from db.crypto import Keyring
from db.events import Actor
from db.models import TotpDevice, User
from db.signins import Member

INCORRECT_PASSWORD = "Incorrect password."


@dataclass(frozen=True)
class PasswordStep:
    """The password was right: either a session token (no second factor) or the user awaiting one."""

    user_id: int
    token: str | None


def password_step(session: Session, *, email: str, password: str, hasher: PasswordHasher, actor: Actor) -> PasswordStep:
    user = users.authenticate(session, email=email, password=password, hasher=hasher, actor=actor)
    if session.exec(select(TotpDevice.id).where(TotpDevice.user_id == user.id)).first() is not None:
        return PasswordStep(user_id=user.id or 0, token=None)
    return PasswordStep(user_id=user.id or 0, token=complete(session, user=user, actor=actor, factor="password"))


def second_step(
    session: Session, *, user_id: int, code: str, backup: bool, keyring: Keyring, actor: Actor, at: float | None = None
) -> str:
    """Check the second factor of a member who gave the right password; returns the session token."""
    user = session.get(User, user_id)
    if user is None:
        raise mfa.IncorrectCode()
    mfa.verify_second_factor(
        session, user=user, code=code, backup=backup, keyring=keyring, actor=actor, purpose="sign_in", at=at
    )
    return complete(session, user=user, actor=actor, factor="backup_code" if backup else "totp")


def complete(session: Session, *, user: User, actor: Actor, factor: str) -> str:
    """Start the session, log it, and tell the member of failed second-factor attempts since last time."""
    failed = events.failures_since(session, user_id=user.id or 0, since=user.last_sign_in_at)
    if failed:
        since = " since your last sign-in" if user.last_sign_in_at else ""
        notices.add(session, user=user, text=f"{failed} failed attempts to verify your identity{since}")
    token = signins.start(session, user=user, ip=actor.ip, user_agent=actor.user_agent)
    users.mark_signed_in(session, user=user, actor=actor, factor=factor)
    session.commit()
    return token


def reauthenticate(
    session: Session,
    *,
    member: Member,
    secret: str,
    method: str,
    keyring: Keyring,
    hasher: PasswordHasher,
    actor: Actor,
    at: float | None = None,
) -> str:
    """Step-up: a second factor (or, without MFA, the password) again; returns the session's new token."""
    user = member.user
    if member.mfa_enabled:
        backup = method == "backup"
        mfa.verify_second_factor(
            session, user=user, code=secret, backup=backup, keyring=keyring, actor=actor, purpose="step_up", at=at
        )
    else:
        _check_password(session, user=user, password=secret, hasher=hasher, actor=actor)
    token = signins.rotate(session, session_id=member.auth.id or 0, verified=True)
    events.record(session, "step_up", actor=actor, target=user)
    session.commit()
    return token


class IncorrectPassword(Exception):
    pass


def _check_password(session: Session, *, user: User, password: str, hasher: PasswordHasher, actor: Actor) -> None:
    key = throttle.user_key(user.id or 0)
    throttle.take_attempts(session, [(key, throttle.SECOND_FACTOR), (throttle.client_key(actor.ip), throttle.CLIENT)])
    if not (user.password_hash and passwords.verify(hasher, user.password_hash, password)):
        events.record(session, "second_factor_failed", actor=actor, target=user, outcome="failure", detail="password")
        session.commit()
        raise IncorrectPassword()
    throttle.clear(session, key)
    throttle.give_back(session, throttle.client_key(actor.ip))


def end_session(session: Session, *, token: str, actor: Actor) -> None:
    signins.end(session, token=token)
    events.record(session, "sign_out", actor=actor, target_label=actor.label)
    session.commit()


def end_other_sessions(session: Session, *, member: Member, actor: Actor) -> int:
    ended = signins.end_others(session, user_id=member.user.id or 0, keep=member.auth.id)
    events.record(session, "sessions_revoked", actor=actor, target=member.user, detail=f"ended={ended}")
    session.commit()
    return ended

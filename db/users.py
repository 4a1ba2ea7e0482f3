"""Accounts: creating them, checking passwords, and the one-time links that set a first password."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from sqlalchemy import bindparam, func, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from db import events, passwords, sessions, throttle
from db.clock import now
from db.errors import IncorrectPassword, InvalidInput
from db.events import Actor
from db.factors import count_attempt, refuse
from db.i18n import _
from db.models import ROLES, User
from db.sql import columns

_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,189}")


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise InvalidInput("email", _("Enter an email address like name@example.com."))
    return email


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput("role", _("Choose a role: %(roles)s.", roles=" / ".join(ROLES)))
    return role


def check_password(password: str) -> str:
    problem = passwords.password_problem(password)
    if problem:
        raise InvalidInput("password", problem)
    return password


def create_user(
    session: Session, *, email: str, role: str, password: str | None, hasher: PasswordHasher, actor: Actor
) -> User:
    """A new member; without a password they can only sign in after following a set-password link."""
    email = normalize_email(email)
    check_role(role)
    if password is not None:
        check_password(password)
    if session.exec(select(User.id).where(User.email == email)).first() is not None:
        raise InvalidInput("email", _("A member with this email already exists."))
    user = User(email=email, role=role, password_hash=hasher.hash(password) if password is not None else None)
    session.add(user)
    session.flush()
    events.record(session, "member_added", actor=actor, target=user, detail=f"role={role}")
    session.commit()
    return user


def count_users(session: Session) -> int:
    return session.exec(select(func.count(col(User.id)))).one()


def has_users(session: Session) -> bool:
    """Whether anyone has an account (asked on every sign-in page, so no count over all members)."""
    return session.exec(select(User.id).limit(1)).first() is not None


def find_user(session: Session, *, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def mark_signed_in(session: Session, *, user: User, actor: Actor, factor: str) -> None:
    """Stamp the sign-in on the member's row (a Core UPDATE; the loaded object is given the same value
    without being marked changed, so no second UPDATE follows at commit) and log it."""
    at = now()
    session.execute(_SIGNED_IN, {"user_id": user.id, "at": at})
    set_committed_value(user, "last_sign_in_at", at)
    events.record(session, "sign_in", actor=actor, target=user, detail=f"factor={factor}")


_U = columns(User)
_SIGNED_IN = update(_U.id.table).where(_U.id == bindparam("user_id")).values(last_sign_in_at=bindparam("at"))


def change_password(
    session: Session,
    *,
    user_id: int,
    current: str,
    new: str,
    hasher: PasswordHasher,
    actor: Actor,
) -> str:
    """A new password; every other session of the member ends (half-finished sign-ins too) and this one
    gets a new token. Knowing the password is not a second factor: "Confirm it's you" is not refreshed."""
    try:
        check_password(new)
    except InvalidInput as error:
        raise InvalidInput("new_password", error.message) from error
    user = recheck_password(session, user_id=user_id, password=current, hasher=hasher, actor=actor)
    user.password_hash = hasher.hash(new)
    session.add(user)
    sessions.end_others(session, user_id=user_id, keep=actor.session_id)
    token = sessions.rotate(session, session_id=actor.session_id or 0, verified=False)
    events.record(session, "password_set", actor=actor, target=user, detail="changed")
    session.commit()
    return token


def recheck_password(
    session: Session,
    *,
    user_id: int,
    password: str,
    hasher: PasswordHasher,
    actor: Actor,
    field: str = "current_password",
) -> User:
    """The signed-in member's password again (a password change, or "Confirm it's you" without MFA): counted
    against the account's second-factor throttle, so it can't be guessed faster than a code."""
    user = session.get(User, user_id)
    if user is None:
        raise IncorrectPassword(field=field)
    lock = count_attempt(session, user=user, actor=actor, exempt=False)
    if not (user.password_hash and passwords.verify(hasher, user.password_hash, password)):
        error = IncorrectPassword(field=field)
        refuse(session, user=user, actor=actor, detail="password", outcome="wrong", lock=lock, error=error)
    throttle.succeeded(session, throttle.user_key(user_id), client=throttle.client_key(actor.ip))
    return user

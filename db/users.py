"""Accounts: creating them, checking passwords, and the one-time links that set a first password."""

from __future__ import annotations

import re
import secrets

from argon2 import PasswordHasher
from sqlalchemy import func
from sqlmodel import Session, col, select

from db import events, passwords, signins, throttle
from db.clock import now
from db.events import Actor
from db.models import ROLES, User

INVALID_CREDENTIALS = "Incorrect email or password."
_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,189}")


class InvalidCredentials(Exception):
    """Unknown email or wrong password: one exception, so the two can't be told apart."""


class InvalidInput(ValueError):
    """A field's value is refused; `field` names it so the form can tie the message to it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise InvalidInput("email", "Enter an email address like name@example.com.")
    return email


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput("role", f"Choose a role: {' or '.join(ROLES)}.")
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
        raise InvalidInput("email", "A member with this email already exists.")
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


_dummy_hashes: dict[tuple[int, int], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash with the live parameters, verified for unknown emails so they cost the same time."""
    key = (hasher.time_cost, hasher.memory_cost)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hashes[key]


def authenticate(session: Session, *, email: str, password: str, hasher: PasswordHasher, actor: Actor) -> User:
    """The member with this email and password. Raises InvalidCredentials or throttle.Throttled.

    Runs one argon2 verification whether or not the email exists, and throttles per email (existing or not)
    and per client address, so neither the answer, its timing nor the throttle tells accounts apart.
    """
    email = email.strip().lower()[:254]
    key = throttle.email_key(email)
    try:
        lock = throttle.take_attempts(
            session, [(key, throttle.PASSWORD), (throttle.client_key(actor.ip), throttle.CLIENT)]
        )
    except throttle.Throttled:
        events.record(session, "throttled", actor=actor, target_label=email, outcome="failure", detail="password")
        session.commit()
        raise
    user = session.exec(select(User).where(User.email == email)).first()
    session.commit()  # no transaction stays open across the hash (PostgreSQL would hold it ~0.2 s)
    stored = user.password_hash if user and user.password_hash else None
    ok = passwords.verify(hasher, stored or _dummy_hash(hasher), password[: passwords.MAX_LENGTH * 4])
    if not (ok and user and stored):
        events.record(session, "sign_in_failed", actor=actor, target=user, target_label=email, outcome="failure")
        if lock:
            events.record(session, "throttled", actor=actor, target=user, target_label=email, outcome="failure")
        session.commit()
        raise InvalidCredentials()
    throttle.clear(session, key)
    throttle.give_back(session, throttle.client_key(actor.ip))
    if hasher.check_needs_rehash(stored):
        user.password_hash = hasher.hash(password)
        session.add(user)
    session.commit()
    return user


def mark_signed_in(session: Session, *, user: User, actor: Actor, factor: str) -> None:
    user.last_sign_in_at = now()
    session.add(user)
    events.record(session, "sign_in", actor=actor, target=user, detail=f"factor={factor}")


class IncorrectPassword(Exception):
    pass


def change_password(
    session: Session,
    *,
    user: User,
    current: str,
    new: str,
    hasher: PasswordHasher,
    actor: Actor,
) -> str:
    """A new password; every other session of the member ends and this one gets a new token."""
    check_password(new)
    keys = [(throttle.user_key(user.id or 0), throttle.SECOND_FACTOR), (throttle.client_key(actor.ip), throttle.CLIENT)]
    throttle.take_attempts(session, keys)
    if not (user.password_hash and passwords.verify(hasher, user.password_hash, current)):
        events.record(session, "second_factor_failed", actor=actor, target=user, outcome="failure", detail="password")
        session.commit()
        raise IncorrectPassword()
    throttle.clear(session, keys[0][0])
    throttle.give_back(session, keys[1][0])
    user.password_hash = hasher.hash(new)
    session.add(user)
    signins.end_others(session, user_id=user.id or 0, keep=actor.session_id)
    token = signins.rotate(session, session_id=actor.session_id or 0, verified=True)
    events.record(session, "password_set", actor=actor, target=user, detail="changed")
    session.commit()
    return token

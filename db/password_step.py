"""The password step of a sign-in: throttled per email (existing or not) and per client address, and one
argon2 verification whether or not the email exists, so neither the answer, its timing nor the throttle
tells accounts apart."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from sqlalchemy import bindparam
from sqlmodel import Session, select

from db import events, passwords, throttle
from db.errors import InvalidCredentials
from db.events import Actor
from db.models import User


def check(session: Session, *, email: str, password: str, hasher: PasswordHasher, actor: Actor) -> User:
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
    user = session.scalars(_BY_EMAIL, {"email": email}).first()
    session.commit()  # no transaction stays open across the hash (PostgreSQL would hold it ~0.2 s)
    stored = user.password_hash if user and user.password_hash else None
    ok = passwords.verify(hasher, stored or _dummy_hash(hasher), password[: passwords.MAX_LENGTH * 4])
    if not (ok and user and stored):
        events.record(session, "sign_in_failed", actor=actor, target=user, target_label=email, outcome="failure")
        if lock:
            events.record(session, "throttled", actor=actor, target=user, target_label=email, outcome="failure")
        session.commit()
        raise InvalidCredentials()
    throttle.succeeded(session, key, client=throttle.client_key(actor.ip))
    if hasher.check_needs_rehash(stored):
        user.password_hash = hasher.hash(password)
        session.add(user)
    session.commit()
    return user


_BY_EMAIL = select(User).where(User.email == bindparam("email"))  # built once: its compiled form is reused

_dummy_hashes: dict[tuple[int, int], str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash with the live parameters, verified for unknown emails so they cost the same time."""
    key = (hasher.time_cost, hasher.memory_cost)
    if key not in _dummy_hashes:
        _dummy_hashes[key] = hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hashes[key]

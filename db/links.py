"""One-time links: the set-up link that creates the first admin, and set-password links for new members.

Only the SHA-256 of a link's token is stored, and a token is consumed by one conditional UPDATE, so two
requests can never both use it.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from sqlalchemy import update
from sqlmodel import Session, col, select

from db import events, sessions
from db.clock import now
from db.errors import DomainError
from db.events import Actor
from db.i18n import _
from db.models import OneTimeToken, User
from db.sql import affected
from db.users import check_password, count_users, create_user, normalize_email

SETUP_TTL = timedelta(days=7)
SET_PASSWORD_TTL = timedelta(days=3)


class InvalidLink(DomainError):
    """A set-up or set-password link that is unknown, used or expired."""

    message = _("This link is no longer valid.")
    status = 404


def _new_token(session: Session, *, purpose: str, user_id: int | None, ttl: timedelta) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        OneTimeToken(purpose=purpose, token_hash=sessions.digest(token), user_id=user_id, expires_at=now() + ttl)
    )
    return token


def _take_token(session: Session, *, purpose: str, token: str) -> OneTimeToken:
    """Consume a one-time token in one conditional UPDATE, so two requests can't both use it."""
    row = session.exec(
        select(OneTimeToken).where(OneTimeToken.token_hash == sessions.digest(token), OneTimeToken.purpose == purpose)
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= now():
        raise InvalidLink()
    taken = session.execute(
        update(OneTimeToken)
        .where(col(OneTimeToken.id) == row.id, col(OneTimeToken.used_at).is_(None))
        .values(used_at=now())
    )
    if affected(taken) != 1:
        raise InvalidLink()
    return row


def issue_setup_token(session: Session) -> str | None:
    """On an empty instance, a fresh one-time link token for creating the first admin (earlier ones die)."""
    if count_users(session) > 0:
        return None
    session.execute(
        update(OneTimeToken)
        .where(col(OneTimeToken.purpose) == "setup", col(OneTimeToken.used_at).is_(None))
        .values(used_at=now())
    )
    token = _new_token(session, purpose="setup", user_id=None, ttl=SETUP_TTL)
    session.commit()
    return token


def instance_is_empty(session: Session) -> bool:
    """Whether nobody has an account yet (asked on every sign-in page, so no count over all members)."""
    return session.execute(_ANYONE).first() is None


_ANYONE = select(User.id).limit(1)


def setup_token_valid(session: Session, *, token: str) -> bool:
    row = session.exec(
        select(OneTimeToken).where(OneTimeToken.token_hash == sessions.digest(token), OneTimeToken.purpose == "setup")
    ).first()
    return row is not None and row.used_at is None and row.expires_at > now() and count_users(session) == 0


def claim_instance(
    session: Session, *, token: str, email: str, password: str, hasher: PasswordHasher, actor: Actor
) -> User:
    """Create the first admin with the one-time setup link; nobody without the link can claim the instance."""
    normalize_email(email)
    check_password(password)
    _take_token(session, purpose="setup", token=token)
    if count_users(session) > 0:
        session.rollback()
        raise InvalidLink()
    return create_user(session, email=email, role="admin", password=password, hasher=hasher, actor=actor)


def issue_set_password_link(session: Session, *, user: User) -> str:
    """A one-time token with which a new member chooses their own password."""
    token = _new_token(session, purpose="password", user_id=user.id, ttl=SET_PASSWORD_TTL)
    session.commit()
    return token


def set_password_with_link(
    session: Session, *, token: str, password: str, hasher: PasswordHasher, actor: Actor
) -> User:
    check_password(password)
    row = _take_token(session, purpose="password", token=token)
    user = session.get(User, row.user_id)
    if user is None:
        raise InvalidLink()
    user.password_hash = hasher.hash(password)
    session.add(user)
    sessions.end_others(session, user_id=user.id or 0, keep=None)
    events.record(session, "password_set", actor=actor, target=user)
    session.commit()
    return user

"""Browser sessions kept on the server, so a cookie can be revoked although it is validly signed.

The cookie holds a random 256-bit token; the table holds its SHA-256. A session is *pending* between the
password and the second step: it is a row like any other, so everything that ends a member's sessions (a
password change, an MFA change, an admin's reset) ends a half-finished sign-in too. Loading the member
behind a cookie, with their authenticator, the org policy and the number of unused backup codes, is one
prebuilt SQL statement.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, Update, bindparam, delete, func, select, update
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import ScalarSelect
from sqlmodel import Session, SQLModel, col

from db import listing
from db.clock import now
from db.member import Member
from db.models import AuthSession, OrgPolicy, PasskeyCredential, RecoveryCode, RememberedBrowser, TotpDevice, User
from db.sql import affected, columns, insert_row

# A session that did not pass a second-factor check (a remembered browser skipped it): "Confirm it's you"
# always asks there before anything sensitive.
UNVERIFIED = datetime(2000, 1, 1, tzinfo=UTC)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start(
    session: Session, *, user: User, ip: str, user_agent: str, pending: bool = False, verified: bool = True
) -> str:
    """A new session for `user`, checked now unless not `verified`; returns the cookie token. Caller commits."""
    token = secrets.token_urlsafe(32)
    insert_row(
        session,
        AuthSession,
        token_hash=digest(token),
        user_id=user.id or 0,
        ip=ip[:64],
        user_agent=user_agent[:255],
        pending=pending,
        verified_at=now() if verified else UNVERIFIED,
    )
    return token


def _count(model: type[SQLModel], *where: ColumnElement[bool]) -> ScalarSelect[int]:
    return select(func.count()).select_from(columns(model)[0].table).where(*where).scalar_subquery()


_S, _U, _T, _P = columns(AuthSession), columns(User), columns(TotpDevice), columns(OrgPolicy)
# Built once and run as SQLAlchemy Core (no ORM identity map, no per-row instrumentation): every signed-in
# request runs it, and building or hydrating ORM objects cost more than the query itself.
_MEMBER_BY_TOKEN = (
    select(
        _S.id.label("session_id"),
        _S.created_at.label("signed_in_at"),
        _S.verified_at,
        _U.id,
        _U.email,
        _U.role,
        _U.created_at,
        _U.backup_codes_saved_at,
        _U.locale,
        _U.time_zone,
        _T.id.label("totp_id"),
        _P.require_admins,
        _P.require_agents,
        _P.grace_days,
        _P.admins_since,
        _P.agents_since,
        _count(RecoveryCode, col(RecoveryCode.user_id) == _S.user_id, col(RecoveryCode.used_at).is_(None)).label(
            "codes_left"
        ),
        _count(PasskeyCredential, col(PasskeyCredential.user_id) == _S.user_id).label("passkeys"),
    )
    .join_from(AuthSession, User, _U.id == _S.user_id)
    .outerjoin(TotpDevice, _T.user_id == _S.user_id)
    .outerjoin(OrgPolicy, _P.id == 1)
    .where(_S.token_hash == bindparam("token_hash"), _S.pending.is_(False))
)


@functools.cache
def _with_lists(dialect: str) -> Select[Any]:
    """The statement with the lists, built once per dialect: SQLAlchemy memoizes a statement's cache key on
    the statement object, so a statement built per request paid for its key every time."""
    return listing.with_lists(_MEMBER_BY_TOKEN, dialect)


def load(connection: Connection, *, token: str, with_lists: bool = False) -> Member | None:
    """The member a cookie token belongs to, in one statement, or None when the session was revoked.
    `with_lists` adds their signed-in sessions and remembered browsers to that same statement (Settings).

    Runs on a bare Core connection: through an ORM Session the same statement cost several times more."""
    statement = _with_lists(connection.dialect.name) if with_lists else _MEMBER_BY_TOKEN
    row = connection.execute(statement, {"token_hash": digest(token)}).mappings().first()
    return None if row is None else Member.from_row(dict(row))


def touch(session: Session, *, session_id: int) -> None:
    """Record activity on a session: called only when the cookie's own stamp is refreshed (once a minute)."""
    session.execute(_TOUCH, {"session_id": session_id, "at": now()})
    session.commit()


_TOUCH = update(_S.id.table).where(_S.id == bindparam("session_id")).values(last_seen_at=bindparam("at"))


def load_pending(session: Session, *, token: str, ttl: int) -> User | None:
    """The member of a half-finished sign-in, while it is younger than `ttl` seconds and still exists."""
    after = now() - timedelta(seconds=ttl)
    row = session.execute(_PENDING_USER, {"token_hash": digest(token), "after": after}).first()
    return None if row is None else row[0]


_PENDING_USER = (
    select(User)
    .join(AuthSession, col(AuthSession.user_id) == User.id)
    .where(_S.token_hash == bindparam("token_hash"), _S.pending.is_(True), _S.created_at > bindparam("after"))
)


def rotate(
    session: Session, *, token: str | None = None, session_id: int | None = None, verified: bool, fresh: bool = False
) -> str:
    """A new token for an existing session (its privilege changed); `verified` marks a second-factor check
    now and finishes a pending sign-in; `fresh` makes it start now (the sign-in it began is complete).
    The caller commits."""
    new = secrets.token_urlsafe(32)
    params = {"new": digest(new), "at": now()} | (
        {"session_id": session_id} if token is None else {"token_hash": digest(token)}
    )
    if affected(session.execute(_rotating(token is not None, verified, fresh), params)) != 1:
        raise LookupError("session ended")
    return new


@functools.cache
def _rotating(by_token: bool, verified: bool, fresh: bool) -> Update:
    """The rotation's UPDATE for each shape, built once (see db/sql.py on Core statements)."""
    values: dict[str, Any] = {"token_hash": bindparam("new")}
    if verified:
        values |= {"verified_at": bindparam("at"), "pending": False}
    if fresh:
        values |= {"created_at": bindparam("at"), "last_seen_at": bindparam("at")}
    where = _S.token_hash == bindparam("token_hash") if by_token else _S.id == bindparam("session_id")
    return update(_S.id.table).where(where).values(**values)


def end(session: Session, *, token: str) -> None:
    """End the session of a cookie token (signed in or pending). The caller commits."""
    session.execute(delete(AuthSession).where(col(AuthSession.token_hash) == digest(token)))


def end_one(session: Session, *, user_id: int, session_id: int, keep: int) -> bool:
    """End one signed-in session of a member (not `keep`, the acting one). Whether it existed; caller commits."""
    query = delete(AuthSession).where(col(AuthSession.user_id) == user_id, col(AuthSession.id) == session_id)
    query = query.where(col(AuthSession.id) != keep, col(AuthSession.pending).is_(False))
    return affected(session.execute(query)) == 1


def end_others(session: Session, *, user_id: int, keep: int | None) -> int:
    """End every session of a member (pending ones too) but `keep`, and forget every browser remembered for
    them, so that none skips the second step after a password or MFA change. Returns how many sessions
    ended; the caller commits."""
    session.execute(delete(RememberedBrowser).where(col(RememberedBrowser.user_id) == user_id))
    query = delete(AuthSession).where(col(AuthSession.user_id) == user_id)
    if keep is not None:
        query = query.where(col(AuthSession.id) != keep)
    return affected(session.execute(query))

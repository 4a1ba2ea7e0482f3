"""Failure counters kept in the database, so every process and every browser of an account shares them.

An attempt is counted *before* it is checked and the count is cleared on success: parallel guesses can't
slip past the limit between a check and an increment. After `free` consecutive failures each further
attempt waits, doubling from `base` seconds up to `cap`. Past `hard` failures the key is hard-locked for
`forget_after` seconds (or until an admin lifts it) for every factor except the exempt ones: a backup code
still opens the account of its owner (78 bits, and still slowed by the backoff), so knowing a member's
password never lets anyone shut the owner out.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, false, or_, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from db.clock import now as utcnow
from db.errors import DomainError
from db.i18n import N_, _
from db.models import Throttle
from db.sql import columns, insert_in


@dataclass(frozen=True)
class Rule:
    free: int
    base: int
    cap: int
    hard: int | None = None
    forget_after: int | None = None  # seconds without an attempt after which the count (and a hard lock) ends

    def backoff_until(self, failures: int, at: datetime) -> datetime | None:
        """When the wait after `failures` consecutive failures ends (None: no wait yet)."""
        if failures < self.free:
            return None
        return at + timedelta(seconds=min(self.cap, self.base * 2 ** (failures - self.free)))

    def hard_until(self, failures: int, at: datetime) -> datetime | None:
        if self.hard is None or failures < self.hard:
            return None
        return at + timedelta(seconds=self.forget_after or 86400)


# Second factor (TOTP, passkeys, backup codes, step-up): 5 free tries, then 30 s doubling to an hour; at 20
# the authenticator and passkeys are refused for a day (backup codes still work, behind the backoff).
SECOND_FACTOR = Rule(free=5, base=30, cap=3600, hard=20, forget_after=86400)
# Password per email: backoff only. A hard lock here would let anyone who knows an email lock its owner out.
PASSWORD = Rule(free=5, base=30, cap=900, forget_after=3600)
# Per client address, wide enough for an office behind one NAT. A success does not clear it (one valid
# account must not let an address keep guessing at others); an hour without attempts does.
CLIENT = Rule(free=100, base=30, cap=900, forget_after=3600)

TOO_MANY = N_("Too many attempts. Try again in %(seconds)d seconds.")
HARD_LOCKED = N_(
    "Too many failed attempts: codes from your authenticator and passkeys are blocked until %(until)s UTC. "
    "Use a backup code, or ask an admin to unlock your account."
)


class Throttled(DomainError):
    status = 429

    def __init__(self, until: datetime, *, hard: bool = False) -> None:
        self.until = until
        self.hard = hard
        text = _(HARD_LOCKED, until=f"{until:%Y-%m-%d %H:%M}") if hard else _(TOO_MANY, seconds=self.retry_after())
        super().__init__(text)

    def retry_after(self, at: datetime | None = None) -> int:
        return max(1, math.ceil((self.until - (at or utcnow())).total_seconds()))


def user_key(user_id: int) -> str:
    return f"mfa:{user_id}"


def email_key(email: str) -> str:
    # A digest, so the table holds no list of tried addresses (and unknown ones look like known ones).
    return "pw:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def client_key(ip: str) -> str:
    return f"ip:{ip[:64]}"


def take_attempts(session: Session, keys: list[tuple[str, Rule]], *, exempt: bool = False) -> datetime | None:
    """Count one attempt under each key (account, client address) and commit; raise Throttled if any is
    locked, counting nothing then. `exempt` (a backup code) passes a hard lock but not the backoff.

    Each key costs one INSERT … ON CONFLICT DO UPDATE … RETURNING that only matches an unlocked row, and
    all keys share one transaction. Returns when a lock starts to hold should this attempt fail (so the
    caller can log it), else None.
    """
    at = utcnow()
    locks: list[datetime] = []
    for key, rule in keys:
        failures = _count(session, key, rule, at, exempt=exempt)
        if failures is None:
            session.rollback()
            raise _why_locked(session, key, rule, at)
        until = rule.backoff_until(failures, at)
        if until:
            session.execute(update(Throttle).where(col(Throttle.key) == key).values(locked_until=until))
            locks.append(rule.hard_until(failures, at) or until)
    session.commit()
    return max(locks, default=None)


def _count(session: Session, key: str, rule: Rule, at: datetime, *, exempt: bool) -> int | None:
    """The key's failures after counting this attempt, or None while it is locked."""
    statement = _counting(session.get_bind().dialect.name, rule, exempt=exempt)
    stale_before = at - timedelta(seconds=rule.forget_after or 0)
    row = session.execute(statement, {"key": key, "at": at, "stale_before": stale_before}).first()
    return None if row is None else row[0]


@functools.cache
def _counting(dialect: str, rule: Rule, *, exempt: bool) -> Any:
    """INSERT … ON CONFLICT DO UPDATE … RETURNING, counting an attempt only on an unlocked row; built once per
    dialect and rule, so SQLAlchemy reuses its compiled form (two run in every sign-in step)."""
    table = columns(Throttle)
    at, stale_before = (
        bindparam("at", type_=table.updated_at.type),
        bindparam("stale_before", type_=table.updated_at.type),
    )
    failures: ColumnElement[int] = table.failures + 1
    stale: ColumnElement[bool] = false()
    if rule.forget_after is not None:
        stale = table.updated_at < stale_before
        failures = case((stale, 1), else_=failures)
    unlocked = or_(table.locked_until.is_(None), table.locked_until <= at)
    if rule.hard is not None and not exempt:
        unlocked = and_(unlocked, or_(table.failures < rule.hard, stale))
    return (
        insert_in(dialect)(table.key.table)
        .values(key=bindparam("key"), failures=1, updated_at=at)
        .on_conflict_do_update(
            index_elements=[table.key], set_={"failures": failures, "updated_at": at}, where=unlocked
        )
        .returning(table.failures)
    )


def _why_locked(session: Session, key: str, rule: Rule, at: datetime) -> Throttled:
    row = session.exec(select(Throttle).where(Throttle.key == key)).first()
    if row is None:
        return Throttled(at)
    hard = rule.hard_until(row.failures, row.updated_at)
    if hard and hard > at and not (row.locked_until and row.locked_until > hard):
        return Throttled(hard, hard=True)
    return Throttled(row.locked_until or at)


def is_hard_locked(session: Session, key: str, rule: Rule = SECOND_FACTOR) -> datetime | None:
    """Until when `key` is hard-locked, if it is (the Team page shows it)."""
    row = session.get(Throttle, key)
    until = rule.hard_until(row.failures, row.updated_at) if row else None
    return until if until and until > utcnow() else None


_T = columns(Throttle)
_CLEAR = update(_T.key.table).where(_T.key.in_(bindparam("keys", expanding=True))).values(failures=0, locked_until=None)
_GIVE_BACK = update(_T.key.table).where(_T.key == bindparam("client"), _T.failures > 0).values(failures=_T.failures - 1)


def clear(session: Session, *keys: str) -> None:
    """Forget the failures of `keys` (an admin's unlock, an MFA change; the caller commits)."""
    session.execute(_CLEAR, {"keys": list(keys)})


def succeeded(session: Session, key: str, *, client: str) -> None:
    """A success: the account's failures (`key`) are forgotten, and the attempt counted under the shared
    client address is given back, so members who sign in correctly from one office never use up that
    address's allowance (its lock, if any, stays). The caller commits.

    Two statements, the account's row first, as `take_attempts` locks them: one UPDATE of both rows locks
    them in whatever order PostgreSQL scans them, and concurrent sign-ins to one account then deadlocked."""
    clear(session, key)
    session.execute(_GIVE_BACK, {"client": client})

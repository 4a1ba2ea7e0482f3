"""Failure counters kept in the database, so every process and every browser of an account shares them.

An attempt is counted *before* it is checked and the count is cleared on success: parallel guesses can't
slip past the limit between a check and an increment. After `free` consecutive failures each further
attempt waits, doubling from `base` seconds; past `hard` failures the key stays locked until an admin or
the operator lifts it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, or_, update
from sqlmodel import Session, col, select

from db.clock import now as utcnow
from db.models import Throttle
from db.upsert import insert_for

FOREVER = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Rule:
    free: int
    base: int
    cap: int
    hard: int | None = None
    forget_after: int | None = None  # seconds without an attempt after which the count starts again

    def locked_until(self, failures: int, at: datetime) -> datetime | None:
        """When a lock after `failures` consecutive failures ends (None: no lock yet)."""
        if self.hard is not None and failures >= self.hard:
            return FOREVER
        if failures < self.free:
            return None
        return at + timedelta(seconds=min(self.cap, self.base * 2 ** (failures - self.free)))


# Second factor (TOTP, backup codes, step-up): 5 free tries, then 30 s doubling to an hour; locked at 20.
SECOND_FACTOR = Rule(free=5, base=30, cap=3600, hard=20)
# Password per email: backoff only. A hard lock here would let anyone who knows an email lock its owner out.
PASSWORD = Rule(free=5, base=30, cap=900, forget_after=3600)
# Per client address, wide enough for an office behind one NAT. A success does not clear it (one valid
# account must not let an address keep guessing at others); an hour without attempts does.
CLIENT = Rule(free=100, base=30, cap=900, forget_after=3600)


class Throttled(Exception):
    def __init__(self, until: datetime) -> None:
        super().__init__(until)
        self.until = until

    @property
    def locked(self) -> bool:
        return self.until >= FOREVER

    def retry_after(self, at: datetime | None = None) -> int:
        return max(1, math.ceil((self.until - (at or utcnow())).total_seconds()))


def user_key(user_id: int) -> str:
    return f"mfa:{user_id}"


def email_key(email: str) -> str:
    # A digest, so the table holds no list of tried addresses (and unknown ones look like known ones).
    return "pw:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def client_key(ip: str) -> str:
    return f"ip:{ip[:64]}"


def take_attempts(session: Session, keys: list[tuple[str, Rule]]) -> datetime | None:
    """Count one attempt under each key (account, client address) and commit; raise Throttled if any is
    locked, counting nothing then.

    Each key costs one INSERT … ON CONFLICT DO UPDATE … RETURNING that only matches an unlocked row, and
    all keys share one transaction. Returns when a lock starts to hold should this attempt fail (so the
    caller can log it), else None.
    """
    at = utcnow()
    locks: list[datetime] = []
    for key, rule in keys:
        failures = _count(session, key, rule, at)
        if failures is None:
            session.rollback()
            raise Throttled(_locked_until(session, key) or at)
        until = rule.locked_until(failures, at)
        if until:
            session.execute(update(Throttle).where(col(Throttle.key) == key).values(locked_until=until))
            locks.append(until)
    session.commit()
    return max(locks, default=None)


def _count(session: Session, key: str, rule: Rule, at: datetime) -> int | None:
    """The key's failures after counting this attempt, or None while it is locked."""
    table = Throttle.__table__.c  # type: ignore[attr-defined]
    failures = table.failures + 1
    if rule.forget_after is not None:
        failures = case((table.updated_at < at - timedelta(seconds=rule.forget_after), 1), else_=failures)
    statement = (
        insert_for(session)(Throttle)
        .values(key=key, failures=1, updated_at=at)
        .on_conflict_do_update(
            index_elements=[table.key],
            set_={"failures": failures, "updated_at": at},
            where=or_(table.locked_until.is_(None), table.locked_until <= at),
        )
        .returning(table.failures)
    )
    row = session.execute(statement).first()
    return None if row is None else row[0]


def clear(session: Session, *keys: str) -> None:
    """A success: forget the failures (the caller commits)."""
    session.execute(update(Throttle).where(col(Throttle.key).in_(keys)).values(failures=0, locked_until=None))


def give_back(session: Session, key: str) -> None:
    """A success: the attempt counted under a shared key (a client address) is returned, so members who
    sign in correctly from one office never use up that address's allowance. The caller commits."""
    session.execute(
        update(Throttle)
        .where(col(Throttle.key) == key, col(Throttle.failures) > 0)
        .values(failures=Throttle.failures - 1)
    )


def _locked_until(session: Session, key: str) -> datetime | None:
    return session.exec(select(Throttle.locked_until).where(Throttle.key == key)).first()

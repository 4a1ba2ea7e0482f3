"""The member list (Team, and `python -m web user list`): every member with their
MFA state, backup codes left and any lock, and the org policy, in one statement.

The locks are the throttle rows that hold failures, aggregated to one JSON column: a member's password lock
is keyed by a digest of their email (db/throttle.py), which SQL can't compute, so they are matched here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from db import listing, throttle
from db.clock import now
from db.models import OrgPolicy, PasskeyCredential, RecoveryCode, Throttle, TotpDevice, User
from db.sql import columns

LOCK_FIELDS = ("key", "failures", "locked_until", "updated_at")


@dataclass(frozen=True)
class MemberRow:
    user: User
    mfa_enabled: bool
    codes_left: int
    locked_until: datetime | None


def team(session: Session) -> tuple[list[MemberRow], OrgPolicy]:
    """What the Team page shows: every member, and the policy (a default one until an admin saves it)."""
    found = session.execute(_team_query(session.get_bind().dialect.name)).all()
    policy = (found[0][5] if found else None) or OrgPolicy(id=1)
    by_key = _locks(found[0][4]) if found else {}
    rows = []
    for user, device_id, left, keys, _, _ in found:
        locked = [_lock_of(by_key.get(throttle.user_key(user.id or 0)), throttle.SECOND_FACTOR)]
        locked.append(_lock_of(by_key.get(throttle.email_key(user.email)), throttle.PASSWORD))
        enabled = device_id is not None or bool(keys)
        rows.append(MemberRow(user, enabled, left or 0, max((h for h in locked if h), default=None)))
    return rows, policy


@functools.cache
def _team_query(dialect: str) -> Any:
    """Built once per dialect, so SQLAlchemy reuses its compiled form (it has no parameters)."""
    codes_left = (
        select(func.count(col(RecoveryCode.id)))
        .where(RecoveryCode.user_id == User.id, col(RecoveryCode.used_at).is_(None))
        .scalar_subquery()
    )
    passkeys = (
        select(func.count(col(PasskeyCredential.id))).where(PasskeyCredential.user_id == User.id).scalar_subquery()
    )
    held = columns(Throttle)[0].table
    locks = listing.json_rows(dialect, held, LOCK_FIELDS, held.c.failures > 0)  # uncorrelated: computed once
    return (  # sqlalchemy's select: sqlmodel's is typed for at most four columns
        sa.select(User, col(TotpDevice.id), codes_left, passkeys, locks, OrgPolicy)
        .outerjoin(TotpDevice, col(TotpDevice.user_id) == User.id)
        .outerjoin(OrgPolicy, col(OrgPolicy.id) == 1)
        .order_by(col(User.email))
    )


def list_members(session: Session) -> list[MemberRow]:
    return team(session)[0]


def _locks(raw: list[dict[str, Any]] | None) -> dict[str, Throttle]:
    rows = (
        Throttle(
            key=r["key"],
            failures=r["failures"],
            locked_until=listing.when(r["locked_until"]),
            updated_at=listing.stamp(r["updated_at"]),
        )
        for r in raw or []
    )
    return {row.key: row for row in rows}


def _lock_of(row: Throttle | None, rule: throttle.Rule) -> datetime | None:
    """Until when a throttle row holds its key: the backoff, or the hard lock of a second factor."""
    if row is None:
        return None
    at = now()
    until = max((t for t in (row.locked_until, rule.hard_until(row.failures, row.updated_at)) if t), default=None)
    return until if until and until > at else None

"""The security log a page at a time, and the admins' chart of failed second-factor checks per day.

Keyset paging (`WHERE id < :before ORDER BY id DESC LIMIT 51`) walks the primary key from a known row, so
page 1 000 costs what page 1 does; OFFSET would read and drop every row before it. One statement a page:
the 51st row only says whether there is an older page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, union
from sqlmodel import Session, col, select

from db.clock import now
from db.events import EventFilter
from db.models import SecurityEvent

PAGE_SIZE = 50
CHART_DAYS = 30


@dataclass(frozen=True)
class EventPage:
    rows: list[SecurityEvent]
    older: int | None  # `?before=` for the next older page, None on the oldest
    newer: int | None  # `?after=` for the next newer page, None on the newest


def _conditions(where: EventFilter) -> list[Any]:
    found: list[Any] = []
    if where.kind:
        found.append(SecurityEvent.kind == where.kind)
    if where.since:
        found.append(SecurityEvent.at >= where.since)
    if where.until:
        found.append(SecurityEvent.at < where.until)
    return found


def _query(where: EventFilter, bound: list[Any], *, newest_first: bool, limit: int) -> Any:
    """One statement. A member's events are those they did or that were done to them: walked as two keyset
    scans, one per index ((actor_id, id), (target_id, id)), each stopping after `limit` rows, so neither
    reads all of the member's rows to sort them (an OR of two indexes would)."""
    key = col(SecurityEvent.id)
    order = key.desc() if newest_first else key.asc()
    conditions = _conditions(where) + bound
    if where.member_id is not None:
        sides = [
            select(key).where(*conditions, side == where.member_id).order_by(order).limit(limit).subquery()
            for side in (col(SecurityEvent.actor_id), col(SecurityEvent.target_id))
        ]
        either = union(select(sides[0].c.id), select(sides[1].c.id))
        conditions = [key.in_(either)]
    return select(SecurityEvent).where(*conditions).order_by(order).limit(limit)


def page_events(
    session: Session, *, where: EventFilter, before: int | None = None, after: int | None = None, size: int = PAGE_SIZE
) -> EventPage:
    """Newest first: the page older than row `before`, or the page newer than row `after`, or the first."""
    key = col(SecurityEvent.id)
    if after is not None:
        found = list(session.exec(_query(where, [key > after], newest_first=False, limit=size + 1)))
        if len(found) > size:
            rows = found[:size][::-1]
            return EventPage(rows, older=rows[-1].id, newer=rows[0].id)
        # Back at the newest rows: show the first page, full, rather than the few rows left over.
        before = None
    bound = [key < before] if before is not None else []
    found = list(session.exec(_query(where, bound, newest_first=True, limit=size + 1)))
    rows = found[:size]
    older = rows[-1].id if rows and len(found) > size else None
    return EventPage(rows, older=older, newer=rows[0].id if rows and before is not None else None)


def failed_per_day(session: Session, *, days: int = CHART_DAYS) -> list[tuple[date, int]]:
    """Failed second-factor checks (repeats included) per UTC day over the last `days` days, oldest first,
    every day present (0 when none). Answered from the (kind, at) index."""
    today = now().date()
    first = today - timedelta(days=days - 1)
    day = func.date(SecurityEvent.at)
    query = (
        select(day, func.sum(1 + col(SecurityEvent.repeats)))
        .where(SecurityEvent.kind == "second_factor_failed", SecurityEvent.at >= now() - timedelta(days=days))
        .group_by(day)
    )
    counts = {str(d)[:10]: int(n or 0) for d, n in session.exec(query)}
    return [(first + timedelta(days=i), counts.get(str(first + timedelta(days=i)), 0)) for i in range(days)]

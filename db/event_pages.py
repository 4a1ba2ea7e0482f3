"""The security log a page at a time, with the admins' member filter and chart of failed second-factor
checks per day in the same statement.

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

from db import listing
from db.clock import now
from db.events import EventFilter
from db.models import SecurityEvent, User
from db.sql import columns

PAGE_SIZE = 50
CHART_DAYS = 30


@dataclass(frozen=True)
class EventPage:
    rows: list[SecurityEvent]
    older: int | None  # `?before=` for the next older page, None on the oldest
    newer: int | None  # `?after=` for the next newer page, None on the newest
    extras: tuple[Any, ...] = ()  # the values of `extras`, when asked for


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
    session: Session,
    *,
    where: EventFilter,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
    extras: tuple[Any, ...] = (),
) -> EventPage:
    """Newest first: the page older than row `before`, or the page newer than row `after`, or the first.

    `extras` are uncorrelated scalar subqueries the page also needs (the admins' chart and member list):
    they ride along as columns of the same statement, which both databases compute once, not per row; an
    empty page reads them on their own."""
    key = col(SecurityEvent.id)
    if after is not None:
        found = _rows(session, _query(where, [key > after], newest_first=False, limit=size + 1), extras)
        if len(found) > size:
            rows = [r[0] for r in found[:size]][::-1]
            return EventPage(rows, older=rows[-1].id, newer=rows[0].id, extras=_extras(session, found, extras))
        # Back at the newest rows: show the first page, full, rather than the few rows left over.
        before = None
    bound = [key < before] if before is not None else []
    found = _rows(session, _query(where, bound, newest_first=True, limit=size + 1), extras)
    rows = [r[0] for r in found[:size]]
    older = rows[-1].id if rows and len(found) > size else None
    newer = rows[0].id if rows and before is not None else None
    return EventPage(rows, older=older, newer=newer, extras=_extras(session, found, extras))


def _rows(session: Session, query: Any, extras: tuple[Any, ...]) -> list[Any]:
    return list(session.execute(query.add_columns(*extras)).all())


def _extras(session: Session, found: list[Any], extras: tuple[Any, ...]) -> tuple[Any, ...]:
    if not extras:
        return ()
    return tuple(found[0][1:]) if found else tuple(session.execute(select(*extras)).one())


def activity_page(
    session: Session, *, where: EventFilter, before: int | None, after: int | None, admin: bool, chart: bool
) -> tuple[EventPage, list[Choice], list[tuple[date, int]]]:
    """Security activity in one statement: the page of events and, for admins, the members to filter by and
    (on a whole page) the chart of failed second-factor checks, as two JSON columns of that statement."""
    dialect = session.get_bind().dialect.name
    extras = ((_choices(dialect),) + ((_per_day(dialect),) if chart else ())) if admin else ()
    page = page_events(session, where=where, before=before, after=after, extras=extras)
    if not admin:
        return page, [], []
    raw_members, raw_chart = page.extras[0], page.extras[1] if chart else None
    members = sorted((Choice(m["id"], m["email"]) for m in raw_members or []), key=lambda m: m.email)
    return page, members, _days(raw_chart) if chart else []


@dataclass(frozen=True)
class Choice:
    """A member in the filter's list."""

    id: int
    email: str


def _choices(dialect: str) -> Any:
    users = columns(User)[0].table
    return listing.json_rows(dialect, users, ("id", "email"))


def _per_day(dialect: str, days: int = CHART_DAYS) -> Any:
    """Failed second-factor checks (repeats included) per UTC day over the last `days` days, from the
    (kind, at) index, as JSON [{day, n}]."""
    day = func.date(SecurityEvent.at).label("day")
    failed = col(SecurityEvent.kind) == "second_factor_failed"
    per_day = (
        select(day, func.sum(1 + col(SecurityEvent.repeats)).label("n"))
        .where(failed, col(SecurityEvent.at) >= now() - timedelta(days=days))
        .group_by(day)
        .subquery()
    )
    return listing.json_rows(dialect, per_day, ("day", "n"))


def _days(raw: list[dict[str, Any]] | None, days: int = CHART_DAYS) -> list[tuple[date, int]]:
    """Every one of the last `days` days, oldest first, 0 when nothing failed."""
    counts = {str(r["day"])[:10]: int(r["n"] or 0) for r in raw or []}
    first = now().date() - timedelta(days=days - 1)
    return [(first + timedelta(days=i), counts.get(str(first + timedelta(days=i)), 0)) for i in range(days)]

"""A member's signed-in sessions and remembered browsers as two JSON columns of the statement that loads the
member (db/sessions.py), so Settings still costs one SQL statement. SQLite and PostgreSQL name their JSON
aggregates differently; the columns are built once per dialect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from sqlalchemy import JSON, ColumnElement, Select, func, literal_column, select

from db.clock import now
from db.models import AuthSession, RememberedBrowser
from db.sql import columns

_S, _B = columns(AuthSession)[0].table, columns(RememberedBrowser)[0].table
SESSION_FIELDS = ("id", "ip", "user_agent", "created_at", "last_seen_at")
BROWSER_FIELDS = ("id", "ip", "user_agent", "created_at", "expires_at", "last_used_at")


@dataclass(frozen=True)
class SignedIn:
    """One of the member's signed-in sessions, as the Sessions list shows it."""

    id: int
    ip: str
    user_agent: str
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class Remembered:
    id: int
    ip: str
    user_agent: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


def json_rows(dialect: str, table: Any, names: tuple[str, ...], *where: ColumnElement[bool]) -> Any:
    """A scalar subquery: the rows of `table` matching `where` as a JSON array of objects."""
    pairs: list[Any] = []
    for name in names:
        pairs += [literal_column(f"'{name}'"), table.c[name]]
    if dialect == "postgresql":
        rows = func.json_agg(func.json_build_object(*pairs), type_=JSON)
    else:
        rows = func.json_group_array(func.json_object(*pairs), type_=JSON)
    return select(rows).where(*where).scalar_subquery()


@cache
def _columns(dialect: str) -> tuple[Any, Any]:
    owner = _S.c.user_id  # the signed-in session's row, in the enclosing statement
    listed = _S.alias("listed")
    signed_in = json_rows(dialect, listed, SESSION_FIELDS, listed.c.user_id == owner, listed.c.pending.is_(False))
    browsers = json_rows(dialect, _B, BROWSER_FIELDS, _B.c.user_id == owner)
    return signed_in.label("signed_in_list"), browsers.label("browsers_list")


def with_lists(statement: Select[Any], dialect: str) -> Select[Any]:
    """`statement` (which selects from auth_session) with the member's two lists as extra columns."""
    return statement.add_columns(*_columns(dialect))


def when(value: str | None) -> datetime | None:
    """A timestamp from JSON: SQLite gives its stored text, PostgreSQL ISO 8601 with an offset."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def stamp(value: str | None) -> datetime:
    """A timestamp the row always has."""
    found = when(value)
    assert found is not None, "a required timestamp is missing"
    return found


def signed_in(raw: list[dict[str, Any]] | None) -> tuple[SignedIn, ...]:
    """The sessions, most recently active first."""
    rows = [
        SignedIn(r["id"], r["ip"], r["user_agent"], stamp(r["created_at"]), stamp(r["last_seen_at"])) for r in raw or []
    ]
    return tuple(sorted(rows, key=lambda r: r.last_seen_at, reverse=True))


def browsers(raw: list[dict[str, Any]] | None) -> tuple[Remembered, ...]:
    """The remembered browsers not yet expired, newest first."""
    current = now()
    rows = [
        Remembered(
            r["id"],
            r["ip"],
            r["user_agent"],
            stamp(r["created_at"]),
            stamp(r["expires_at"]),
            when(r["last_used_at"]),
        )
        for r in raw or []
    ]
    return tuple(sorted((r for r in rows if r.expires_at > current), key=lambda r: r.created_at, reverse=True))

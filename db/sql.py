"""Small SQL helpers shared by the model: INSERT … ON CONFLICT for the two dialects we run on (their
constructs are alike but separate), a table model's Core columns for statements built once, one row
inserted without the unit of work, and the count of rows a conditional UPDATE or DELETE changed (how the
app accepts a code exactly once).

The model's hot writes (every sign-in's) are Core statements on the table, not ORM-enabled ones on the
class: an ORM `update(Model)` evaluates its WHERE against the session's objects and an added object waits
for the unit of work's flush, each several times the cost of the statement itself (about 250 µs against
30 µs for one throttle UPDATE on SQLite). They are used where no loaded object of those rows is read again.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Column, CursorResult, Result, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlmodel import Session, SQLModel


def insert_for(session: Session) -> Any:
    return insert_in(session.get_bind().dialect.name)


def insert_in(dialect: str) -> Any:
    """The INSERT construct with ON CONFLICT of a dialect, for statements built once per dialect."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def columns(model: type[SQLModel]) -> ReadOnlyColumnCollection[str, Column[Any]]:
    """A table model's Core columns, for statements built once. sqlmodel sets `__table__` on every
    `table=True` class when it is created; its type stubs don't declare it."""
    return model.__table__.c  # type: ignore[attr-defined, no-any-return]


def insert_row(session: Session, row: SQLModel) -> None:
    """INSERT `row` now, as a Core statement in the session's transaction. The model is built first so its
    defaults (`default_factory`) apply; nothing reads the row back, so no identity is kept for it."""
    table = row.__table__  # type: ignore[attr-defined]  # see columns()
    values = {
        c.name: getattr(row, c.name) for c in table.columns if not (c.primary_key and getattr(row, c.name) is None)
    }
    session.execute(_insert(table), values)


_inserts: dict[Any, Any] = {}


def _insert(table: Any) -> Any:
    """One INSERT construct per table, so its compiled form is cached and reused."""
    if table not in _inserts:
        _inserts[table] = insert(table)
    return _inserts[table]


def affected(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE changed. `Session.execute` is typed to return `Result`; for DML it is a
    `CursorResult`, which has the count (None on drivers that can't tell is treated as 0)."""
    return cast(CursorResult[Any], result).rowcount or 0

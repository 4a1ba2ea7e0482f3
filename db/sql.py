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

import functools
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


def insert_row(session: Session, model: type[SQLModel], **values: Any) -> None:
    """INSERT one row of `model` now, as a Core statement in the session's transaction. Fields not given
    take the model's defaults (`default`, `default_factory`) as constructing the model would, without
    building the instance (five times the cost of reading the defaults); nothing reads the row back."""
    statement, fields, key = _inserting(model)
    if unknown := values.keys() - fields.keys():
        raise TypeError(f"{model.__name__} has no field {', '.join(sorted(unknown))}")
    row = {
        name: values[name] if name in values else info.get_default(call_default_factory=True)
        for name, info in fields.items()
    }
    if row.get(key) is None:
        row.pop(key, None)  # the database numbers the row
    session.execute(statement, row)


@functools.cache
def _inserting(model: type[SQLModel]) -> tuple[Any, dict[str, Any], str]:
    """The model's INSERT (built once, so its compiled form is reused), its fields and its key's name."""
    table = model.__table__  # type: ignore[attr-defined]  # see columns()
    key = next(iter(table.primary_key.columns)).name
    return insert(table), dict(model.model_fields), key


def affected(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE changed. `Session.execute` is typed to return `Result`; for DML it is a
    `CursorResult`, which has the count (None on drivers that can't tell is treated as 0)."""
    return cast(CursorResult[Any], result).rowcount or 0

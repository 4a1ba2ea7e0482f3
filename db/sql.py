"""Small SQL helpers shared by the model: INSERT … ON CONFLICT for the two dialects we run on (their
constructs are alike but separate), a table model's Core columns for statements built once, and the count
of rows a conditional UPDATE or DELETE changed (how the app accepts a code exactly once)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Column, CursorResult, Result
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


def affected(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE changed. `Session.execute` is typed to return `Result`; for DML it is a
    `CursorResult`, which has the count (None on drivers that can't tell is treated as 0)."""
    return cast(CursorResult[Any], result).rowcount or 0

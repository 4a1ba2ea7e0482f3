"""Applying the Alembic migrations from code (the CLI, `make run`, the tests).

Several processes may start at once (workers, an operator command beside the server): each takes a lock
first, so exactly one migrates and the others find the schema up to date.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

ROOT = Path(__file__).resolve().parent.parent
_PG_LOCK = 360_360  # an arbitrary application-wide advisory lock number


def alembic_config() -> Config:
    return Config(str(ROOT / "alembic.ini"))


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision."""
    config = alembic_config()
    with _exclusive(engine), engine.begin() as connection:
        _lock(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _exclusive(engine: Engine) -> Iterator[None]:
    """A file lock beside a SQLite database file (SQLite has no advisory locks); nothing otherwise."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _lock(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})

"""Engines and sessions. No engine is built at import time: the app factory and the CLI make one."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, event, make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from db.liveness import drop_if_dead


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets foreign keys on and a busy timeout so processes can share the file."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if not memory:
            _create_private(make_url(url).database or "")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 15},
            poolclass=StaticPool if memory else None,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping: it is a round trip on every checkout. `drop_if_dead` looks at the socket instead, so a
    # connection the server dropped is replaced before use; recycling keeps connections from outliving
    # server timeouts. Only a request whose connection drops while it runs fails (web.unavailable: a 503).
    engine = create_engine(url, pool_size=10, max_overflow=10, pool_recycle=1800)
    event.listen(engine, "checkout", drop_if_dead)
    return engine


def _create_private(database: str) -> None:
    """Create the SQLite file 0600 before SQLite does (it would use 0644); its WAL and SHM files take the
    database file's mode. An existing file is left as it is."""
    if not database or database.startswith("file:"):
        return
    try:
        os.close(os.open(Path(database), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except (FileExistsError, FileNotFoundError):
        pass  # exists already, or its directory doesn't (SQLite will report that)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]  # a DB-API connection: untyped by PEP 249
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_session(engine: Engine) -> Session:
    """A session whose objects stay readable after commit (templates render them afterwards)."""
    return Session(engine, expire_on_commit=False)

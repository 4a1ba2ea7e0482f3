"""Engines and sessions. No engine is built at import time: the app factory and the CLI make one."""

from __future__ import annotations

from sqlalchemy import Engine, event
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, create_engine

from db.liveness import drop_if_dead


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets foreign keys on and a busy timeout so processes can share the file."""
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
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


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_session(engine: Engine) -> Session:
    """A session whose objects stay readable after commit (templates render them afterwards)."""
    return Session(engine, expire_on_commit=False)

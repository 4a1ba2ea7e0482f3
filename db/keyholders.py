"""Which encryption keys each running app process holds. Every process reports from its background loop;
the key commands read the reports to decide whether the next rotation phase is safe."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, delete, select

from db.clock import now
from db.crypto import Keyring
from db.models import KeyHolder
from db.sql import columns, insert_for

FORGET_AFTER = timedelta(days=7)  # reports of processes gone this long are deleted


def holder_name() -> str:
    """One name per app instance: several apps may share a process (tests), and a pid is reused."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _at(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def report(session: Session, *, holder: str, keyring: Keyring, every: float, stopped: bool = False) -> None:
    """Record this process's keys now (re-reading a changed key file first)."""
    keyring.refresh(force=True)
    values = {
        "fingerprints": ",".join(keyring.fingerprints()),
        "sealed_at": _at(keyring.sealed_at),
        "old_sealed_at": _at(keyring.old_sealed_at),
        "report_every": every,
        "seen_at": now(),
        "stopped": stopped,
    }
    table = columns(KeyHolder)
    statement = insert_for(session)(KeyHolder).values(holder=holder, **values)
    session.execute(statement.on_conflict_do_update(index_elements=[table.holder], set_=values))
    session.execute(delete(KeyHolder).where(col(KeyHolder.seen_at) < now() - FORGET_AFTER))
    session.commit()


@dataclass(frozen=True)
class Holder:
    name: str
    fingerprints: tuple[str, ...]
    sealed_at: datetime | None
    old_sealed_at: datetime | None
    seen_at: datetime
    live: bool

    @property
    def primary(self) -> str:
        return self.fingerprints[0]


def is_live(row: KeyHolder, at: datetime) -> bool:
    """Running: not stopped, and reported within three of its own intervals (plus slack for a busy host)."""
    return not row.stopped and row.seen_at >= at - timedelta(seconds=3 * row.report_every + 5)


def holders(session: Session) -> list[Holder]:
    at = now()
    rows = session.exec(select(KeyHolder).order_by(col(KeyHolder.holder))).all()
    return [
        Holder(r.holder, tuple(r.fingerprints.split(",")), r.sealed_at, r.old_sealed_at, r.seen_at, is_live(r, at))
        for r in rows
    ]

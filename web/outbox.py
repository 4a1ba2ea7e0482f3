"""Mailing security notices after the request that queued them, from a small loop in each worker. The same
loop reports which encryption keys the worker holds (db/keyholders.py), for key rotation to wait on."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from datetime import datetime

import anyio
import anyio.to_thread
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette

from db import events, keyholders, outbox
from db.engine import open_session
from db.factors import challenges
from web.config import Settings

log = logging.getLogger("chat360.outbox")
PRUNE_EVERY = 3600.0  # seconds between deletions of log entries past their retention (and old challenges)


def mailer(settings: Settings) -> outbox.Mailer:
    return outbox.Mailer(
        smtp_url=settings.smtp_url,
        outbox=settings.outbox,
        sender=f"security@{settings.host}",
        ca_file=settings.smtp_ca_file,
    )


def deliver_now(settings: Settings, engine: Engine, *, at: datetime | None = None) -> int:
    """One round of the outbox; a notice that could not be sent stays queued (and logged) for a later round."""
    with open_session(engine) as session:
        return outbox.deliver(session, mailer=mailer(settings), app_name=settings.app_name, at=at)


def prune(settings: Settings, engine: Engine) -> int:
    """The security log past its retention, and expired passkey challenges; the log entries deleted."""
    with open_session(engine) as session:
        challenges.purge(session)
        return events.prune(session, older_than_days=settings.event_retention_days)


def housekeeping(settings: Settings, engine: Engine, last_prune: float) -> float:
    """Mail what is queued; prune the log when it is due. Returns when the log was last pruned."""
    deliver_now(settings, engine)
    if time.monotonic() - last_prune < PRUNE_EVERY:
        return last_prune
    prune(settings, engine)
    return time.monotonic()


def report_keys(app: Starlette, *, stopped: bool = False) -> None:
    try:
        with open_session(app.state.engine) as session:
            keyholders.report(
                session,
                holder=app.state.key_holder,
                keyring=app.state.keyring,
                every=app.state.settings.outbox_interval,
                stopped=stopped,
            )
    except OperationalError as exc:  # the database is away: one line, the next report follows
        log.warning("reporting the loaded encryption keys failed, database unavailable (%s); will retry", exc.orig)
    except Exception:  # noqa: BLE001 - a rotation waits for the next report; serving must go on
        log.exception("reporting the loaded encryption keys failed; will retry")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings

    async def loop() -> None:
        last_prune = -PRUNE_EVERY
        while True:
            await anyio.sleep(settings.outbox_interval)
            await anyio.to_thread.run_sync(lambda: report_keys(app))
            try:
                last_prune = await anyio.to_thread.run_sync(housekeeping, settings, app.state.engine, last_prune)
            except OperationalError as exc:  # the database is away (restart, dropped connections): one line
                log.warning("delivering security notices failed, database unavailable (%s); will retry", exc.orig)
            except Exception:  # noqa: BLE001 - a broken mail server or database must not stop the worker
                log.exception("delivering security notices failed; will retry")

    report_keys(app)
    async with anyio.create_task_group() as group:
        group.start_soon(loop)
        yield
        group.cancel_scope.cancel()
    report_keys(app, stopped=True)

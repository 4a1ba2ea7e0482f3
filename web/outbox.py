"""Mailing security notices after the request that queued them, from a small loop in each worker. The same
loop reports which encryption keys the worker holds (db/keyholders.py), for key rotation to wait on."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
from starlette.applications import Starlette

from db import keyholders, notices
from db.engine import open_session
from web.config import Settings

log = logging.getLogger("chat360.outbox")


def mailer(settings: Settings) -> notices.Mailer:
    return notices.Mailer(smtp_url=settings.smtp_url, outbox=settings.outbox, sender=f"security@{settings.host}")


def deliver_now(settings: Settings, engine: object) -> int:
    with open_session(engine) as session:  # type: ignore[arg-type]
        return notices.deliver(session, mailer=mailer(settings), app_name=settings.app_name)


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
    except Exception:  # noqa: BLE001 - a rotation waits for the next report; serving must go on
        log.exception("reporting the loaded encryption keys failed; will retry")


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings

    async def loop() -> None:
        while True:
            await anyio.sleep(settings.outbox_interval)
            await anyio.to_thread.run_sync(lambda: report_keys(app))
            try:
                await anyio.to_thread.run_sync(deliver_now, settings, app.state.engine)
            except Exception:  # noqa: BLE001 - a broken mail server or database must not stop the worker
                log.exception("delivering security notices failed; will retry")

    report_keys(app)
    async with anyio.create_task_group() as group:
        group.start_soon(loop)
        yield
        group.cancel_scope.cancel()
    report_keys(app, stopped=True)

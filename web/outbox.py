"""Mailing security notices after the request that queued them, from a small loop in each worker."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
from sqlalchemy.exc import OperationalError
from starlette.applications import Starlette

from db import notices
from db.engine import open_session
from web.config import Settings

log = logging.getLogger("chat360.outbox")


def mailer(settings: Settings) -> notices.Mailer:
    return notices.Mailer(smtp_url=settings.smtp_url, outbox=settings.outbox, sender=f"security@{settings.host}")


def deliver_now(settings: Settings, engine: object) -> int:
    with open_session(engine) as session:  # type: ignore[arg-type]
        return notices.deliver(session, mailer=mailer(settings), app_name=settings.app_name)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    settings: Settings = app.state.settings

    async def loop() -> None:
        while True:
            await anyio.sleep(settings.outbox_interval)
            try:
                await anyio.to_thread.run_sync(deliver_now, settings, app.state.engine)
            except OperationalError as exc:  # the database is away (restart, dropped connections): one line
                log.warning("delivering security notices failed, database unavailable (%s); will retry", exc.orig)
            except Exception:  # noqa: BLE001 - a broken mail server or database must not stop the worker
                log.exception("delivering security notices failed; will retry")

    async with anyio.create_task_group() as group:
        group.start_soon(loop)
        yield
        group.cancel_scope.cancel()

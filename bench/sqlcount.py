"""SQL statements per request, counted in-process: the app from `create_app` over its own engine, a
SQLAlchemy `before_cursor_execute` listener on that engine, requests sent through httpx's ASGI transport."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2 as httpx
from signin import sign_in
from sqlalchemy import event

from db.engine import make_engine
from web.app import create_app
from web.config import Settings

PAGES = {
    "GET /settings?section=mfa": {},
    "GET /settings?section=mfa (htmx partial)": {"HX-Request": "true", "HX-Request-Type": "partial"},
}


def count_statements(settings: Settings, member: dict[str, str]) -> dict[str, int]:
    """Statements each request of a sign-in and of the two authenticated pages sends to the database."""
    engine = make_engine(settings.database_url)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    app = create_app(settings, engine)
    try:
        return asyncio.run(_count(app, member, statements))
    finally:
        engine.dispose()


async def _count(app: Any, member: dict[str, str], statements: list[str]) -> dict[str, int]:
    transport = httpx.ASGITransport(app=app)
    counts: dict[str, int] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client:
        statements.clear()
        await sign_in(client, member, [])
        counts["a whole sign-in (4 requests)"] = len(statements)
        for name, headers in PAGES.items():
            statements.clear()
            (await client.get("/settings?section=mfa", headers=headers)).raise_for_status()
            counts[name] = len(statements)
    return counts

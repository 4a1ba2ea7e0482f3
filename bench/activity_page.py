"""GET /activity, first page, with 100,000 events of the member's in the log: median and p95 of 50 requests
through Starlette's TestClient (in-process, no network), after one warm-up request.

    PYTHONPATH=. .venv/bin/python bench/activity_page.py sqlite
    PYTHONPATH=. .venv/bin/python bench/activity_page.py postgresql+psycopg://postgres@127.0.0.1:5432/<db>

The PostgreSQL database named is emptied (its public schema is dropped) and migrated.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text
from starlette.testclient import TestClient

from db import migrate
from db.engine import make_engine
from tests.conftest import Auth, Clock, make_settings
from tests.test_activity_paging import seed
from web.app import create_app


def main(url: str) -> None:
    tmp = Path(tempfile.mkdtemp())
    url = f"sqlite:///{tmp}/bench.db" if url == "sqlite" else url
    engine = make_engine(url)
    if url.startswith("postgresql"):
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate.upgrade(engine)
    app = create_app(make_settings(tmp, totp_clock=Clock(), database_url=url), engine)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, app.state.settings)
        member = auth.create()
        seed(engine, member, 100_000)
        if url.startswith("postgresql"):
            with engine.begin() as conn:
                conn.execute(text("ANALYZE security_event"))  # as autovacuum does after a bulk load
        auth.login(member)
        client.get("/activity")
        times = []
        for _ in range(50):
            started = time.perf_counter()
            assert client.get("/activity").status_code == 200
            times.append(time.perf_counter() - started)
    times.sort()
    print(f"{url.split(':')[0]}: median {statistics.median(times) * 1000:.1f} ms, p95 {times[47] * 1000:.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sqlite")

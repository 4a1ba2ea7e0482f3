"""The database dropping the app's connections (security requirement 52): a request in flight may get a
clean 503 with Retry-After, never a 500 or a traceback; a connection the server dropped while it sat in the
pool is replaced at checkout, so requests after the drop succeed. The drop is real: `pg_terminate_backend`
on every backend of a real `python -m web serve --workers 2`, under concurrent signed-in requests."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from db import migrate
from db.engine import make_engine
from db.models import AuthSession
from tests.conftest import PASSWORD, PG_URL, make_settings
from tests.support_processes import (
    Browser,
    Server,
    free_port,
    httpx,
    start_server,
    stop,
    throwaway_database,
    wait_ready,
)
from tests.test_multiprocess import ENV, enrol_accounts
from web.app import create_app

SESSIONS = 6  # concurrent signed-in members; each signs in with one of the account's 10 backup codes
PAGES = ("/", "/settings")
BROKEN = 0  # the status recorded for a connection the server closed without an answer


@dataclass
class Result:
    started: float
    status: int
    retry_after: str | None
    traceback: bool


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, list[Browser]]]:
    """One server with two workers on a throwaway database, and SESSIONS members signed in to it."""
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set: dropping connections needs a PostgreSQL server")
    data_dir = tmp_path_factory.mktemp("faults")
    with ExitStack() as stack:
        url = stack.enter_context(throwaway_database(PG_URL))
        env = ENV | {"DATA_DIR": str(data_dir), "DATABASE_URL": url}
        engine = make_engine(url)
        migrate.upgrade(engine)
        account = enrol_accounts(engine, env, ["faults"])["faults"]
        engine.dispose()  # only the server's connections are in the database when it drops them
        server = start_server(env, data_dir / "server.log", "--workers", "2")
        stack.callback(stop, [server])
        wait_ready([server])
        browsers = [Browser(server) for _ in range(SESSIONS)]
        for browser in browsers:
            stack.callback(browser.close)
        for browser, code in zip(browsers, account.codes, strict=False):
            browser.password(account.email, PASSWORD)
            assert browser.verify(code, backup=True).status_code == 303
        yield server, url, browsers


KILL = (
    "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def admin_connection(url: str) -> psycopg.Connection:
    return psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))


def terminate_backends(url: str) -> int:
    """Every connection to the app's database but ours, waiting until each backend has exited."""
    with admin_connection(url) as conn:
        return len(conn.execute(KILL).fetchall())


def terminate_backends_mid_request(url: str) -> int:
    """The same drop, timed so that requests are certainly in flight: the sessions table is locked until
    at least one request waits on it, then every backend (the waiting ones included) is terminated."""
    with admin_connection(url) as conn:
        conn.execute(f'LOCK TABLE "{AuthSession.__tablename__}" IN ACCESS EXCLUSIVE MODE')
        waiting = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        wait_for(lambda: conn.execute(waiting).fetchone()[0] >= 1)  # type: ignore[index]
        killed = len(conn.execute(KILL).fetchall())
        conn.rollback()
    return killed


def hammer(browser: Browser, done: threading.Event, results: list[Result]) -> None:
    """Signed-in pages, one after another, until told to stop."""
    n = 0
    while not done.is_set():
        started = time.monotonic()
        try:
            response = browser.http.get(PAGES[n % len(PAGES)])
        except httpx.TransportError:  # the server hung up: what an unhandled error after the 500 looks like
            results.append(Result(started, BROKEN, None, False))
        else:
            retry_after = response.headers.get("retry-after")
            results.append(Result(started, response.status_code, retry_after, _trace(response)))
        n += 1


def _trace(response: object) -> bool:
    return "Traceback" in response.text  # type: ignore[attr-defined]


def stopped(futures: list[Future[None]]) -> bool:
    """A member's thread ended early (its request raised): stop waiting and let `result()` say why."""
    return any(f.done() for f in futures)


def wait_for(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)  # polling interval


def test_dropped_connections_under_load_cost_at_most_the_requests_in_flight(
    deployment: tuple[Server, str, list[Browser]],
) -> None:
    """Members keep clicking while every connection is dropped: the requests that were using one are 503s
    with Retry-After; none is a 500 or shows a traceback, and everything begun after the drop succeeds."""
    server, url, browsers = deployment
    done = threading.Event()
    results: list[list[Result]] = [[] for _ in browsers]
    with ThreadPoolExecutor(max_workers=len(browsers)) as pool:
        running = [pool.submit(hammer, b, done, r) for b, r in zip(browsers, results, strict=True)]
        try:
            wait_for(lambda: stopped(running) or all(len(r) >= 5 for r in results))
            killed = terminate_backends_mid_request(url)
            killed_at = time.monotonic()
            wait_for(lambda: stopped(running) or all(sum(x.started > killed_at for x in r) >= 5 for r in results))
        finally:
            done.set()  # the members stop clicking even when the test has already failed
        for future in running:
            future.result()
    everything = [x for r in results for x in r]
    assert killed >= 2, "the workers had no connections to drop"
    assert not [x for x in everything if x.traceback]
    assert {x.status for x in everything} <= {200, 503}, [x.status for x in everything if x.status != 200]
    failed = [x for x in everything if x.status == 503]
    assert failed, "no request was in flight when the connections dropped"
    assert all(x.retry_after for x in failed)
    after = [x.status for x in everything if x.started > killed_at]
    assert after.count(200) == len(after), f"requests begun after the drop failed: {after}"
    assert server.process.poll() is None


def test_connections_dropped_while_idle_are_replaced_before_use(
    deployment: tuple[Server, str, list[Browser]],
) -> None:
    """The drop happens between requests, so no request is in flight: the next ones, all at once on both
    workers, find their pooled connections dead at checkout, get new ones, and every one succeeds."""
    server, url, browsers = deployment
    burst(browsers)  # every worker has connections in its pool
    assert terminate_backends(url) >= 2
    statuses = burst(browsers)
    assert set(statuses) == {200}, statuses
    assert server.process.poll() is None


def burst(browsers: list[Browser], rounds: int = 3) -> list[int]:
    """Every member loads a signed-in page at the same moment, `rounds` times."""
    barrier = threading.Barrier(len(browsers))

    def one(browser: Browser) -> list[int]:
        statuses = []
        for n in range(rounds):
            barrier.wait(timeout=30)
            response = browser.http.get(PAGES[n % len(PAGES)])
            assert not _trace(response)
            statuses.append(response.status_code)
        return statuses

    with ThreadPoolExecutor(max_workers=len(browsers)) as pool:
        return [status for statuses in pool.map(one, browsers) for status in statuses]


def unreachable_app(tmp_path: Path):  # noqa: ANN201
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    return create_app(make_settings(tmp_path, database_url=url), make_engine(url))


def test_unreachable_database_gives_a_503_page(tmp_path: Path) -> None:
    """Nothing listens on the port: the page that needs the database is a 503 with Retry-After."""
    with TestClient(unreachable_app(tmp_path), base_url="https://testserver") as client:
        response = client.get("/login")
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert "briefly unavailable" in response.text and "<html" in response.text
    assert "Traceback" not in response.text and "psycopg" not in response.text


def test_unreachable_database_gives_htmx_a_short_fragment(tmp_path: Path) -> None:
    """htmx 4 swaps a 503 body into the page, so it gets the alert fragment, not a whole document."""
    headers = {"HX-Request": "true", "HX-Request-Type": "partial"}
    with TestClient(unreachable_app(tmp_path), base_url="https://testserver") as client:
        response = client.get("/login", headers=headers)
    assert response.status_code == 503 and response.headers["retry-after"]
    assert response.text.lstrip().startswith('<div id="alerts"') and "<html" not in response.text


def test_outbox_loop_keeps_retrying_while_the_database_is_away(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The mail loop in each worker logs the failure and tries again; the worker goes on serving."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    app = create_app(make_settings(tmp_path, database_url=url, outbox_interval=0.01), make_engine(url))
    caplog.set_level(logging.WARNING, logger="chat360.outbox")
    with TestClient(app, base_url="https://testserver") as client:
        wait_for(lambda: len([r for r in caplog.records if r.name == "chat360.outbox"]) >= 3)
        assert client.get("/healthz").status_code == 200
    outbox = [r for r in caplog.records if r.name == "chat360.outbox"]
    assert not [r for r in outbox if r.exc_info], "an outage is one line per retry, not a traceback each time"

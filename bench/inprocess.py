"""The app run in this process, over the seeded database: SQL statements per request, the app's own CPU per
request, the argon2 cost, and pyinstrument profiles that say where a request's time goes.

Requests are driven straight through ASGI in the main thread (no HTTP server, no test-client thread), so
the profiler sees every frame of the app and nothing of a client. For the sign-in profile the hashing
offload (`web.offload.hashing`, a worker thread) is run inline, so the argon2 call shows up in the same
profile as everything around it.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import loadgen
import pyotp
from argon2 import PasswordHasher
from pyinstrument import Profiler
from pyinstrument.frame import Frame
from seed import PASSWORD, Seeded
from sqlalchemy import Engine, event
from starlette.applications import Starlette

from web import auth
from web.app import create_app
from web.config import Settings
from web.templating import static_version

HX_PARTIAL = [("HX-Request", "true"), ("HX-Request-Type", "partial")]


class AsgiConnection:
    """loadgen.Connection's interface on a direct ASGI call, so the same scenario code drives both."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def close(self) -> None:
        pass

    async def request(
        self, method: str, path: str, headers: list[tuple[str, str]] | None = None, body: bytes | None = None
    ) -> loadgen.Answer:
        raw_path, _, query = path.partition("?")
        pairs = [(b"host", b"127.0.0.1:8000")] + [(k.lower().encode(), v.encode()) for k, v in headers or ()]
        if body is not None:
            pairs.append((b"content-type", b"application/x-www-form-urlencoded"))
            pairs.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": pairs,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body or b"", "more_body": False}

        answer = loadgen.Answer(0, [], b"")
        parts: list[bytes] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = [(k.decode().lower(), v.decode()) for k, v in message.get("headers", [])]
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await self.app(scope, receive, send)
        answer.body = b"".join(parts)
        return answer


@dataclass
class Counter:
    """SQL statements and pool checkouts, counted by SQLAlchemy events on the app's engine; on PostgreSQL
    also round trips to the server (statements, plus BEGIN/COMMIT/ROLLBACK and the pool's pre-ping), counted
    in psycopg."""

    statements: int = 0
    checkouts: int = 0
    round_trips: int = 0
    log: list[str] = field(default_factory=list)

    @contextmanager
    def attached(self, engine: Engine) -> Iterator[None]:
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "checkout", self._checkout)
        try:
            if engine.dialect.name == "postgresql":
                with self._psycopg():
                    yield
            else:
                yield
        finally:
            event.remove(engine, "before_cursor_execute", self._statement)
            event.remove(engine, "checkout", self._checkout)

    @contextmanager
    def _psycopg(self) -> Iterator[None]:
        import psycopg
        from psycopg._connection_base import BaseConnection

        execute, command = psycopg.Cursor.execute, BaseConnection._exec_command

        def counted_execute(cursor: Any, *args: Any, **kwargs: Any) -> Any:
            self.round_trips += 1
            return execute(cursor, *args, **kwargs)

        def counted_command(conn: Any, *args: Any, **kwargs: Any) -> Any:
            self.round_trips += 1
            return command(conn, *args, **kwargs)

        with (
            mock.patch.object(psycopg.Cursor, "execute", counted_execute),
            mock.patch.object(BaseConnection, "_exec_command", counted_command),
        ):
            yield

    def _statement(self, conn: object, cursor: object, statement: str, *args: object) -> None:
        self.statements += 1
        self.log.append(" ".join(statement.split())[:90])

    def _checkout(self, *args: object) -> None:
        self.checkouts += 1

    @contextmanager
    def count(self, into: dict[str, dict[str, Any]], name: str) -> Iterator[None]:
        before, checkouts, trips, log = self.statements, self.checkouts, self.round_trips, len(self.log)
        yield
        into[name] = {
            "statements": self.statements - before,
            "checkouts": self.checkouts - checkouts,
            "round_trips": self.round_trips - trips,
            "sql": self.log[log:],
        }


async def _inline_hashing(request: object, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    return fn(**kwargs)


def hash_cost(settings: Settings, rounds: int = 3) -> dict[str, float]:
    """One argon2id verification with the production parameters, timed in this process (median of a few);
    and the CPU each costs when one runs on every core at once, as under sign-in load (64 MiB each: they
    compete for memory bandwidth and cache)."""
    hasher: PasswordHasher = settings.password_hasher
    stored = hasher.hash(PASSWORD)
    walls, cpus = [], []
    for _ in range(rounds):
        w, c = time.perf_counter(), time.thread_time()
        hasher.verify(stored, PASSWORD)
        walls.append(time.perf_counter() - w)
        cpus.append(time.thread_time() - c)
    cores = os.cpu_count() or 1
    barrier, parallel = threading.Barrier(cores), []

    def one() -> None:
        barrier.wait()
        c = time.thread_time()
        hasher.verify(stored, PASSWORD)
        parallel.append(time.thread_time() - c)

    threads = [threading.Thread(target=one) for _ in range(cores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "time_cost": hasher.time_cost,
        "memory_kib": hasher.memory_cost,
        "parallelism": hasher.parallelism,
        "wall": statistics.median(walls),
        "cpu": statistics.median(cpus),
        "parallel_cpu": statistics.median(parallel),
        "parallel": cores,
    }


async def _sign_in(app: Starlette, member: Seeded) -> loadgen.Browser:
    browser = loadgen.Browser(AsgiConnection(app))  # type: ignore[arg-type]
    await loadgen.sign_in(browser, member.email, PASSWORD, member.secret)
    return browser


async def count_statements(app: Starlette, counter: Counter, member: Seeded) -> dict[str, dict[str, Any]]:
    """Statements per request: each step of a sign-in, the Settings page, its partial, a static file, step-up."""
    counts: dict[str, dict[str, Any]] = {}
    browser = loadgen.Browser(AsgiConnection(app))  # type: ignore[arg-type]
    await browser.get("/login")  # warm: templates compiled, caches filled
    browser.cookies.clear()
    with counter.count(counts, "GET /login"):
        page = loadgen.expect(await browser.get("/login"), 200, "GET /login")
    form = {"csrf_token": loadgen.csrf_of(page, "login"), "email": member.email, "password": PASSWORD, "next": "/"}
    with counter.count(counts, "POST /login"):
        moved = loadgen.expect(await browser.post("/login", form), 303, "POST /login")
    with counter.count(counts, "GET /login/verify"):
        challenge = loadgen.expect(await browser.get(moved.header("location") or ""), 200, "GET /login/verify")
    step = int(time.time() // 30)
    code = pyotp.TOTP(member.secret).at(step * 30)
    form = {"csrf_token": loadgen.csrf_of(challenge, "verify"), "code": code, "next": "/"}
    with counter.count(counts, "POST /login/verify"):
        loadgen.expect(await browser.post("/login/verify", form), 303, "POST /login/verify")
    await browser.get("/settings")  # warm
    with counter.count(counts, "GET /settings"):
        loadgen.expect(await browser.get("/settings"), 200, "GET /settings")
    with counter.count(counts, "GET /settings?section=mfa (htmx partial)"):
        loadgen.expect(await browser.get("/settings?section=mfa", HX_PARTIAL), 200, "partial")
    with counter.count(counts, "GET /static/app.css"):
        css = f"/static/app.css?v={static_version('app.css')}"
        loadgen.expect(await browser.get(css, [("Accept-Encoding", "gzip")]), 200, "static")
    with counter.count(counts, "GET /reauth"):
        page = loadgen.expect(await browser.get("/reauth?next=/settings/webhooks"), 200, "GET /reauth")
    form = {
        "csrf_token": loadgen.csrf_of(page, "reauth"),
        "reauth_factor": "totp",
        "reauth_secret": pyotp.TOTP(member.secret).at((step + 1) * 30),  # the sign-in used this step
        "reauth_method": "GET",
        "reauth_next": "/settings/webhooks",
    }
    with counter.count(counts, "POST /reauth (step-up verify)"):
        loadgen.expect(await browser.post("/reauth", form), 303, "POST /reauth")
    return counts


@dataclass
class Profiled:
    name: str
    per_op_ms: float  # app CPU per operation, measured without the profiler
    wall_ms: float  # wall time per operation, likewise (more than the CPU when the database is a server)
    ops: int
    breakdown: list[tuple[int, str, float]]  # (depth, what, share of the profiled operation's time)
    top_self: list[tuple[str, float]]  # (function, share) by self time
    text: str
    hash_ms: float = 0.0  # CPU in argon2 verify per operation, measured without the profiler


@dataclass(frozen=True)
class Part:
    """A part of an operation: the outermost frames of `function` in a file whose path contains `path`.

    With `parts`, the time not in any of them is shown as `rest`, so the tree adds up.
    """

    label: str
    path: str
    function: str
    parts: tuple[Part, ...] = ()
    rest: str = ""


PAGE = Part(
    "whole request through the ASGI app (middleware, routing, handler)",
    "starlette/applications.py",
    "__call__",
    (
        Part("CookieSession.load: itsdangerous unsign + base64 + JSON", "web/cookies.py", "load"),
        Part(
            "guards.member → _load: the member behind the cookie",
            "web/guards.py",
            "_load",
            (
                Part(
                    "db.signins.load: one SELECT through the ORM",
                    "db/signins.py",
                    "load",
                    (
                        Part(
                            "Session.exec: cache key, execute, 4 ORM objects",
                            "sqlmodel/orm/session.py",
                            "exec",
                            (
                                Part(
                                    "in the driver (sqlite3 execute; psycopg: waiting on PostgreSQL's round trips)",
                                    "<built-in>|psycopg/connection.py",
                                    "Cursor.execute|wait",
                                ),
                            ),
                            "SQLAlchemy and the ORM around it",
                        ),
                        Part("Result.first", "sqlalchemy/engine/result.py", "first"),
                    ),
                    "building the select() expression, on every request",
                ),
                Part("Session.__exit__: close, ROLLBACK, back to the pool", "sqlalchemy/orm/session.py", "__exit__"),
            ),
            "rest of _load",
        ),
        Part(
            "web.templating.render: Jinja TemplateResponse",
            "web/templating.py",
            "render",
            (
                Part("Request.url_for from url_for()/static_url() in templates", "starlette/requests.py", "url_for"),
                Part(
                    "Environment.get_template (auto_reload: a stat per template)",
                    "jinja2/environment.py",
                    "get_template",
                ),
            ),
            "rendering proper",
        ),
        Part("SecurityHeaders: 7 headers per response", "web/protect.py", "apply_security_headers"),
    ),
    "the rest: Starlette middleware, routing, response, cookie compare",
)
SIGN_IN = Part(
    "one whole sign-in: GET /login, POST /login, GET /login/verify, POST /login/verify",
    "starlette/applications.py",
    "__call__",
    (
        Part("argon2id verify of the password: the hash", "argon2/_password_hasher.py", "verify"),
        Part(
            "throttle.take_attempts: per key INSERT…ON CONFLICT + UPDATE…RETURNING + COMMIT",
            "db/throttle.py",
            "take_attempts",
        ),
        Part("throttle.clear", "db/throttle.py", "clear"),
        Part("mfa._use_totp: SELECT device, Fernet decrypt, 3 HMACs, UPDATE", "db/mfa.py", "_use_totp"),
        Part("login.complete: failures_since, session row, event, COMMIT", "db/login.py", "complete"),
        Part("users.count_users on GET /login: SELECT count(*) FROM user", "db/users.py", "count_users"),
        Part("web.templating.render: login and verify pages", "web/templating.py", "render"),
    ),
    "the rest: middleware, routing, form parsing, other SQL",
)


def _flatten(root: Frame, part: Part, depth: int = 0) -> list[tuple[int, str, float]]:
    """(depth, label, seconds) for the part and its sub-parts, with a `rest` line where given."""
    total = _outermost(root, part.path, part.function)
    rows = [(depth, part.label, total)]
    inner = 0.0
    for sub in part.parts:
        sub_rows = _flatten(root, sub, depth + 1)
        inner += sub_rows[0][2]
        rows += sub_rows
    if part.parts and part.rest:
        rows.append((depth + 1, part.rest, max(0.0, total - inner)))
    return rows


def _outermost(frame: Frame, path: str, function: str) -> float:
    """Time in the outermost frames of `function` in a file matching `path` ("|" separates alternatives)."""
    where = frame.file_path or ""
    if any(frame.function == f and p in where for p, f in zip(path.split("|"), function.split("|"), strict=True)):
        return frame.time
    return sum(_outermost(child, path, function) for child in frame.children)


def _self_times(frame: Frame, into: dict[str, float]) -> None:
    if not frame.is_synthetic:
        where = (frame.file_path_short or "").replace(".venv/lib/python3.11/site-packages/", "")
        key = f"{frame.function} ({where})"
        into[key] = into.get(key, 0.0) + frame.total_self_time
    for child in frame.children:
        _self_times(child, into)


class _HashTimer:
    """Wraps PasswordHasher.verify to add up its CPU time, so a sign-in's CPU splits into hash and the rest."""

    def __init__(self) -> None:
        self.cpu = 0.0
        original = PasswordHasher.verify

        def verify(hasher: PasswordHasher, *args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(hasher, *args, **kwargs)
            finally:
                self.cpu += time.thread_time() - started

        self.verify = verify


def _profile(name: str, ops: int, op: Callable[[int], Awaitable[None]], parts: Part, timed_ops: int) -> Profiled:
    """Time `timed_ops` operations without the profiler (CPU per op), then profile `ops` more."""

    async def many(start: int, count: int) -> None:
        for i in range(start, start + count):
            await op(i)

    timer = _HashTimer()
    with mock.patch.object(PasswordHasher, "verify", timer.verify):
        cpu, wall = time.process_time(), time.perf_counter()
        asyncio.run(many(0, timed_ops))
        per_op = (time.process_time() - cpu) / timed_ops * 1000
        wall_ms = (time.perf_counter() - wall) / timed_ops * 1000
    profiler = Profiler(interval=0.0002, async_mode="disabled")
    profiler.start()
    asyncio.run(many(timed_ops, ops))
    profiler.stop()
    root = profiler.last_session.root_frame() if profiler.last_session else None
    assert root is not None
    total = _outermost(root, parts.path, parts.function) or root.time
    breakdown = [(depth, label, seconds / total) for depth, label, seconds in _flatten(root, parts)]
    selfs: dict[str, float] = {}
    _self_times(root, selfs)
    top = sorted(selfs.items(), key=lambda kv: -kv[1])[:12]
    text = profiler.output_text(unicode=True, color=False, show_all=False, time="percent_of_total")
    hash_ms = timer.cpu / timed_ops * 1000
    return Profiled(name, per_op, wall_ms, ops, breakdown, [(k, v / total) for k, v in top], text, hash_ms)


def measure(
    settings: Settings, members: list[Seeded], out_dir: Path, label: str, page_ops: int = 400
) -> dict[str, Any]:
    """SQL counts, CPU per request and profiles over the seeded database; profiles are written to out_dir.

    The app is made as the server makes it (`create_app(settings)`, its own engine and pool)."""
    app = create_app(settings)
    try:
        return _measure(app, members, out_dir, label, page_ops)
    finally:
        app.state.engine.dispose()


def _measure(app: Starlette, members: list[Seeded], out_dir: Path, label: str, page_ops: int) -> dict[str, Any]:
    counter = Counter()
    with counter.attached(app.state.engine):
        counts = asyncio.run(count_statements(app, counter, members[0]))

    browser = asyncio.run(_sign_in(app, members[1]))

    async def page(_: int) -> None:
        loadgen.expect(await browser.get("/settings"), 200, "GET /settings")

    async def partial(_: int) -> None:
        loadgen.expect(await browser.get("/settings?section=mfa", HX_PARTIAL), 200, "partial")

    pool = iter(members[2:])

    async def sign_in(_: int) -> None:
        await _sign_in(app, next(pool))

    profiles = [
        _profile("Settings page", page_ops, page, PAGE, page_ops),
        _profile("MFA partial (htmx)", page_ops, partial, PAGE, page_ops),
    ]
    with mock.patch.object(auth, "hashing", _inline_hashing):
        profiles.append(_profile("Sign-in", 3, sign_in, SIGN_IN, 4))
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in profiles:
        slug = re.sub(r"[^a-z0-9]+", "-", p.name.lower()).strip("-")
        (out_dir / f"profile-{label}-{slug}.txt").write_text(p.text)
    return {"counts": counts, "profiles": profiles}

"""The load generator: a separate process, so its CPU is measured apart from the server's.

Closed loop at fixed concurrency: each virtual user (VU) holds one keep-alive HTTP/1.1 connection and
sends its next request when the previous answer is in. It speaks HTTP over raw asyncio streams (no HTTP
client library), which keeps the client's CPU per request small next to the server's; the report says how
much it used. Reads a JSON spec on stdin and writes a JSON result on stdout.

Kinds:
  get     the same GET for every VU, each with its own cookie (Settings page, MFA partial, bare page)
  signin  GET /login, POST /login, GET /login/verify, POST /login/verify with a TOTP code; distinct members
  stepup  GET /reauth, POST /reauth with a TOTP code; each code a (member, time step) not used before
  login   sign in the given members once (no timing) and return their session cookies
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pyotp

CSRF = re.compile(rb'name="csrf_token" value="([^"]+)"')
PERIOD = 30
TICKS = os.sysconf("SC_CLK_TCK")


class Unexpected(Exception):
    """An answer the scenario did not expect (wrong status, missing token): counted as an error."""


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.host_header = f"Host: {host}:{port}\r\n".encode()
        self.local_port = 0

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.local_port = self.writer.get_extra_info("sockname")[1]

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, headers: list[tuple[str, str]] | None = None, body: bytes | None = None
    ) -> Answer:
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        head = [f"{method} {path} HTTP/1.1\r\n".encode(), self.host_header]
        for name, value in headers or ():
            head.append(f"{name}: {value}\r\n".encode())
        if body is not None:
            head.append(b"Content-Type: application/x-www-form-urlencoded\r\n")
            head.append(f"Content-Length: {len(body)}\r\n".encode())
        head.append(b"\r\n")
        if body:
            head.append(body)
        self.writer.write(b"".join(head))
        try:
            return await self._read()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise

    async def _read(self) -> Answer:
        assert self.reader is not None
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw[:-4].decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        answer = Answer(status, headers, b"")
        length = answer.header("content-length")
        if length is not None:
            answer.body = await self.reader.readexactly(int(length))
        elif (answer.header("transfer-encoding") or "").lower() == "chunked":
            answer.body = await self._chunked()
        if (answer.header("connection") or "").lower() == "close":
            self.close()
        return answer

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)


@dataclass
class Browser:
    """A cookie jar on a connection: what one person's browser would send.

    `address` is sent as X-Forwarded-For, which uvicorn trusts from 127.0.0.1 (`proxy_headers`), as it
    would from a reverse proxy: each member signs in from their own address, as people do. All from one
    address, the app's per-address throttle (which a success does not clear) would lock it after 100
    attempts, and the benchmark would measure refusals.
    """

    conn: Connection
    cookies: dict[str, str] = field(default_factory=dict)
    address: str | None = None

    def _headers(self, extra: list[tuple[str, str]] | None) -> list[tuple[str, str]]:
        headers = list(extra or [])
        if self.address:
            headers.append(("X-Forwarded-For", self.address))
        if self.cookies:
            headers.append(("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items())))
        return headers

    async def get(self, path: str, extra: list[tuple[str, str]] | None = None) -> Answer:
        return self._keep(await self.conn.request("GET", path, self._headers(extra)))

    async def post(self, path: str, form: dict[str, str]) -> Answer:
        body = urlencode(form).encode()
        return self._keep(await self.conn.request("POST", path, self._headers(None), body))

    def _keep(self, answer: Answer) -> Answer:
        for name, value in answer.headers:
            if name != "set-cookie":
                continue
            pair, _, attrs = value.partition(";")
            key, _, val = pair.partition("=")
            if not val or "max-age=0" in attrs.lower():
                self.cookies.pop(key.strip(), None)
            else:
                self.cookies[key.strip()] = val.strip()
        return answer

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())


def expect(answer: Answer, status: int, what: str) -> Answer:
    if answer.status != status:
        raise Unexpected(f"{what}: HTTP {answer.status} (expected {status})")
    return answer


def csrf_of(answer: Answer, what: str) -> str:
    found = CSRF.search(answer.body)
    if not found:
        raise Unexpected(f"{what}: no CSRF token in the page")
    return found.group(1).decode()


async def sign_in(browser: Browser, email: str, password: str, secret: str) -> int:
    """The whole sign-in a person does; returns the bytes received."""
    page = expect(await browser.get("/login"), 200, "GET /login")
    form = {"csrf_token": csrf_of(page, "GET /login"), "email": email, "password": password, "next": "/settings"}
    moved = expect(await browser.post("/login", form), 303, "POST /login")
    location = moved.header("location") or ""
    if not location.startswith("/login/verify"):
        raise Unexpected(f"POST /login: redirected to {location!r}")
    challenge = expect(await browser.get(location), 200, "GET /login/verify")
    form = {
        "csrf_token": csrf_of(challenge, "GET /login/verify"),
        "code": pyotp.TOTP(secret).now(),
        "next": "/settings",
    }
    done = expect(await browser.post("/login/verify", form), 303, "POST /login/verify")
    if "chat360_session" not in browser.cookie_header():
        raise Unexpected("POST /login/verify: no session cookie")
    return len(page.body) + len(moved.body) + len(challenge.body) + len(done.body)


@dataclass
class StepUpMember:
    """A signed-in member for step-up: codes are single-use per time step, so the last step is remembered."""

    cookie: dict[str, str]
    secret: str
    address: str
    last_step: int = -1


def next_step(member: StepUpMember, at: float) -> int | None:
    """The next time step whose code the server still accepts and this member has not used, or None.

    The server accepts the current step ±1. The previous step is only used with more than half of the
    current one left, so however slow the server answers, a step boundary before its check can't turn a
    valid code into a failure (failures count against the account and the client address).
    """
    current = int(at // PERIOD)
    lowest = current - 1 if at % PERIOD < PERIOD / 2 else current
    step = max(member.last_step + 1, lowest)
    return step if step <= current + 1 else None


async def step_up(browser: Browser, member: StepUpMember) -> int:
    """GET /reauth for the CSRF token, then POST /reauth with a code for a time step not used before."""
    page = expect(await browser.get("/reauth?next=/settings/webhooks"), 200, "GET /reauth")
    step = next_step(member, time.time())
    if step is None:
        raise Unexpected("no unused time step left")  # checked by the caller just before; can't happen
    form = {
        "csrf_token": csrf_of(page, "GET /reauth"),
        "reauth_factor": "totp",
        "reauth_secret": pyotp.TOTP(member.secret).at(step * PERIOD),
        "reauth_method": "GET",
        "reauth_next": "/settings/webhooks",
    }
    member.last_step = step  # used even if refused: the server may have accepted it before an error
    done = expect(await browser.post("/reauth", form), 303, "POST /reauth")
    return len(page.body) + len(done.body)


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime of the processes, in clock ticks (server workers, read from /proc)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def all_ticks() -> dict[int, tuple[str, int]]:
    """{pid: (command, utime + stime ticks)} of every process, to name what else used the CPU."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        head, _, rest = raw.rpartition(")")
        fields = rest.split()
        found[int(entry)] = (head.partition("(")[2], int(fields[11]) + int(fields[12]))
    return found


def database_pids(name: str | None) -> set[int]:
    """PostgreSQL backends serving the benchmark's database (their process title names it)."""
    if not name:
        return set()
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if f" {name} ".encode() in f.read():
                        found.add(int(entry))
            except OSError:
                continue
    return found


def others(
    before: dict[int, tuple[str, int]], after: dict[int, tuple[str, int]], skip: set[int], seconds: float
) -> list[list[Any]]:
    """The processes other than the server, the database and this client that used the most CPU in the
    window, in cores: someone else's work on the same machine."""
    used = []
    for pid, (name, ticks) in after.items():
        if pid in skip:
            continue
        delta = ticks - before.get(pid, (name, 0))[1]
        if delta > 0:
            used.append([f"{name}[{pid}]", delta / TICKS / seconds])
    return sorted(used, key=lambda x: -x[1])[:4]


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle, sum(values[:8])


def owners(port: int, pids: list[int]) -> dict[int, int]:
    """Which server worker holds each connection to `port`: {client port: worker pid}, read from /proc."""
    inodes: dict[int, int] = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes[int(link[8:-1])] = pid
        except OSError:
            continue
    found = {}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            local, remote, state, inode = parts[1], parts[2], parts[3], int(parts[9])
            if state == "01" and int(local.split(":")[1], 16) == port and inode in inodes:
                found[int(remote.split(":")[1], 16)] = inodes[inode]
    return found


async def balance(conns: list[Connection], port: int, pids: list[int], attempts: int = 200) -> dict[int, int]:
    """Open every connection and spread them evenly over the server's workers; returns {pid: connections}.

    uvicorn's workers share one listening socket, and asyncio accepts every pending connection at once,
    so 16 connects in a burst can all land on one worker, and a keep-alive connection never moves.
    Reconnecting one connection of the busiest worker at a time evens them out (bounded attempts).
    """
    for conn in conns:
        await conn._open()
    counts: dict[int, int] = {}
    for _ in range(attempts):
        await asyncio.sleep(0.02)
        held = owners(port, pids)
        counts = {pid: 0 for pid in pids}
        for conn in conns:
            if conn.local_port in held:
                counts[held[conn.local_port]] += 1
        if sum(counts.values()) < len(conns):
            continue  # some connections are still waiting to be accepted
        if len(pids) < 2 or max(counts.values()) - min(counts.values()) <= 1:
            break
        busiest = max(counts, key=lambda pid: counts[pid])
        victim = next(c for c in conns if held.get(c.local_port) == busiest)
        victim.close()
        await victim._open()
    return counts


@dataclass
class Window:
    start: float
    end: float
    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    done_outside: int = 0
    waits: int = 0

    def record(self, began: float, size: int) -> None:
        ended = time.perf_counter()
        if self.start <= ended <= self.end:
            self.latencies.append(ended - began)
            self.sizes.append(size)
        else:
            self.done_outside += 1

    def error(self, exc: BaseException) -> None:
        key = f"{type(exc).__name__}: {exc}"[:160]
        self.errors[key] = self.errors.get(key, 0) + 1


async def vu_get(conn: Connection, window: Window, path: str, headers: list[tuple[str, str]], status: int) -> None:
    browser = Browser(conn, dict(_cookie_pairs(headers)))
    extra = [(k, v) for k, v in headers if k.lower() != "cookie"]
    while time.perf_counter() < window.end:
        began = time.perf_counter()
        try:
            answer = await browser.get(path, extra)
            expect(answer, status, f"GET {path}")
            window.record(began, len(answer.body))
        except (Unexpected, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            window.error(exc)


def _cookie_pairs(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = []
    for name, value in headers:
        if name.lower() == "cookie":
            for part in value.split(";"):
                key, _, val = part.strip().partition("=")
                pairs.append((key, val))
    return pairs


async def vu_signin(conn: Connection, window: Window, members: list[list[str]]) -> None:
    for email, password, secret, address in members:
        if time.perf_counter() >= window.end:
            return
        browser = Browser(conn, address=address)
        began = time.perf_counter()
        try:
            window.record(began, await sign_in(browser, email, password, secret))
        except (Unexpected, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            window.error(exc)
    window.waits += 1  # ran out of distinct members before the window ended


async def vu_stepup(conn: Connection, window: Window, members: list[StepUpMember]) -> None:
    while time.perf_counter() < window.end:
        progressed = False
        for member in members:
            if time.perf_counter() >= window.end:
                return
            if next_step(member, time.time()) is None:
                continue
            progressed = True
            browser = Browser(conn, member.cookie, member.address)
            began = time.perf_counter()
            try:
                window.record(began, await step_up(browser, member))
            except (Unexpected, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                window.error(exc)
        if not progressed:  # every member used every step the server accepts now: wait for the next one
            window.waits += 1
            await asyncio.sleep(min(1.0, max(0.05, window.end - time.perf_counter())))


async def login_members(host: str, port: int, members: list[list[str]]) -> list[str]:
    """Sign each member in over HTTP (the real flow, argon2 included) and return their cookie headers."""

    async def one(member: list[str]) -> str:
        conn = Connection(host, port)
        try:
            email, password, secret, address = member
            browser = Browser(conn, address=address)
            await sign_in(browser, email, password, secret)
            return browser.cookie_header()
        finally:
            conn.close()

    return list(await asyncio.gather(*(one(m) for m in members)))


def split(items: list[Any], parts: int) -> list[list[Any]]:
    return [items[i::parts] for i in range(parts)]


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], spec["port"]
    if spec["kind"] == "login":
        return {"cookies": await login_members(host, port, spec["members"])}
    concurrency = spec["concurrency"]
    window = Window(start=0.0, end=0.0)  # set once the connections are open and spread over the workers
    conns = [Connection(host, port) for _ in range(concurrency)]
    if spec["kind"] == "get":
        vus = [
            vu_get(c, window, spec["path"], [tuple(h) for h in cookie], spec["status"])
            for c, cookie in zip(conns, spec["headers_per_vu"], strict=True)
        ]
    elif spec["kind"] == "signin":
        vus = [vu_signin(c, window, part) for c, part in zip(conns, split(spec["members"], concurrency), strict=True)]
    elif spec["kind"] == "stepup":
        members = [StepUpMember(dict(_cookie_pairs([("cookie", c)])), s, a) for c, s, a in spec["members"]]
        vus = [vu_stepup(c, window, part) for c, part in zip(conns, split(members, concurrency), strict=True)]
    else:
        raise SystemExit(f"unknown kind {spec['kind']!r}")
    spread = await balance(conns, port, spec["server_pids"])
    t0 = time.perf_counter()
    window.start, window.end = t0 + spec["warmup"], t0 + spec["warmup"] + spec["seconds"]
    tasks = [asyncio.ensure_future(vu) for vu in vus]
    await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
    pids = spec["server_pids"]
    worker_ticks = [cpu_ticks([pid]) for pid in pids]
    everyone = all_ticks()
    sample_start = (time.process_time(), cpu_ticks(pids), machine_ticks(), time.perf_counter())
    await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
    sample_end = (time.process_time(), cpu_ticks(pids), machine_ticks(), time.perf_counter())
    per_worker = [(cpu_ticks([pid]) - before) / TICKS for pid, before in zip(pids, worker_ticks, strict=True)]
    after = all_ticks()
    database = database_pids(spec.get("database")) & set(after)
    database_cpu = sum(after[p][1] - everyone.get(p, ("", 0))[1] for p in database) / TICKS
    busiest_others = others(everyone, after, {*pids, *database, os.getpid()}, sample_end[3] - sample_start[3])
    # In-flight operations at the end are not counted; give them a moment, then cut them off.
    _, pending = await asyncio.wait(tasks, timeout=spec.get("grace", 1.0))
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for conn in conns:
        conn.close()
    elapsed = sample_end[3] - sample_start[3]
    busy = (sample_end[2][0] - sample_start[2][0]) / TICKS
    total = (sample_end[2][1] - sample_start[2][1]) / TICKS
    return {
        "ops": len(window.latencies),
        "seconds": elapsed,
        "latency": summary(window.latencies),
        "bytes": (sum(window.sizes) / len(window.sizes)) if window.sizes else 0,
        "errors": window.errors,
        "waits": window.waits,
        "client_cpu": sample_end[0] - sample_start[0],
        "server_cpu": (sample_end[1] - sample_start[1]) / TICKS,
        "server_cpu_by_worker": per_worker,
        "connections_by_worker": list(spread.values()),
        "others": busiest_others,
        "database_cpu": database_cpu,
        "machine_busy": busy,
        "machine_total": total,
    }


def summary(latencies: list[float]) -> dict[str, float]:
    """p50/p95/p99 (nearest rank), mean and max, in milliseconds."""
    if not latencies:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
    ordered = sorted(latencies)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))] * 1000

    mean = sum(ordered) / len(ordered) * 1000
    return {"p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "mean": mean, "max": ordered[-1] * 1000}


def main() -> None:
    spec = json.load(sys.stdin)
    if spec.get("pin") is not None:
        os.sched_setaffinity(0, {int(spec["pin"])})
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.install()
        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    result = asyncio.run(run(spec))
    result["loop"] = loop
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()

"""`make bench`: how fast Chat360 is, against the ceiling of its own stack (issue #5).

Seeds 2,000 members with MFA on, serves the app with uvicorn (as `python -m web serve`) and a bare
Starlette + Jinja page (the ceiling) the same way, drives both from a separate load process at fixed
concurrency, and measures in-process what a request costs (SQL statements, CPU, a profile). On SQLite,
and again on PostgreSQL when DATABASE_URL names one (in a throwaway database it creates and drops).
Prints the figures with PASS/FAIL against the issue's targets and writes them to docs/benchmarks.md.

Every process it starts is its own process group and is ended on exit, error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import inprocess
import seed
from sqlalchemy import Engine, create_engine, delete, make_url, text

from db.crypto import new_key
from db.engine import make_engine
from db.models import Throttle
from web.config import load_settings
from web.templating import static_version

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

HOST = "127.0.0.1"
PY = sys.executable
MEMBERS = 2000
LOAD_USERS = 16  # one per virtual user, signed in over HTTP
SIGNIN_POOL = 400  # distinct members for the sign-in scenario (about 10/s is the hash's ceiling)
RESERVED = 20  # for the in-process measurements
HX_PARTIAL = [["HX-Request", "true"], ["HX-Request-Type", "partial"]]
LIVE_NAMES = {
    "Settings page": "Settings page",
    "MFA partial (htmx)": "MFA partial (htmx)",
    "Sign-in": "sign-in (4 requests)",
}
PAGES = [
    ("Settings page", "/settings", []),
    ("MFA partial (htmx)", "/settings?section=mfa", HX_PARTIAL),
]
QUIET_CORES = 0.25  # background load above which a measurement waits (bounded) before it starts
NOISE_CORES = 0.10  # another process using more than this during a measurement is named in the report
STALL_MS = 20.0  # a keep-alive request slower than this is waiting on a delayed ACK
TARGET_RATIO = 0.5
TARGET_PARTIAL_BYTES = 0.10
TARGET_SIGNIN_REST = 0.10

_children: list[subprocess.Popen[bytes]] = []


# ---- processes


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A child in its own process group (so its workers can be ended with it), remembered for cleanup."""
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    _children.append(proc)
    return proc


def _end(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the child's process group while its leader lives (so the group is surely ours), SIGKILL
    if it lingers. Workers that outlived their supervisor are ended by `_reap`, by pid."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    if proc in _children:
        _children.remove(proc)


def _started(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), which tells a pid apart from a later reuse."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _reap(workers: list[tuple[int, int]]) -> None:
    """SIGKILL the recorded worker processes that are still the same processes (pid and start time)."""
    for pid, started in workers:
        if _started(pid) == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _end_all() -> None:
    for proc in list(_children):
        _end(proc)


def _on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return sorted(found)


@dataclass
class Server:
    """A uvicorn server we started: the supervisor and its worker processes."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    workers: int
    log: Path
    seen: list[tuple[int, int]] = field(default_factory=list)  # (pid, start time) of its workers

    def worker_pids(self) -> list[int]:
        return [self.proc.pid] if self.workers == 1 else _children_of(self.proc.pid)

    def peak_rss_mib(self) -> list[float]:
        """VmHWM (peak resident set) of each worker, in MiB."""
        peaks = []
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"VmHWM:\s+(\d+) kB", status)
            if match:
                peaks.append(int(match.group(1)) / 1024)
        return peaks

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see {self.log}:\n{self.log_tail()}")
            try:
                if fetch(self.port, "/healthz").status == 200 and len(self.worker_pids()) == self.workers:
                    time.sleep(1.0)  # let every worker reach accept(); the warm-up covers the rest
                    self.seen = [(pid, _started(pid) or -1) for pid in self.worker_pids() if pid != self.proc.pid]
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s; see {self.log}:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


@dataclass
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(port: int, path: str, headers: dict[str, str] | None = None) -> Fetched:
    """One GET with http.client: no decompression, so headers and bytes are what went over the wire."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        answer = conn.getresponse()
        return Fetched(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        conn.close()


@contextmanager
def serving(name: str, argv: list[str], env: dict[str, str], workers: int, log: Path) -> Iterator[Server]:
    port = free_port()
    env = {**env, "HOST": HOST, "PORT": str(port)}
    argv = [a.replace("{port}", str(port)) for a in argv]
    proc = _start(argv, env, log)
    server = Server(name, proc, port, workers, log)
    try:
        server.wait_ready()
        yield server
    finally:
        _end(proc)
        _reap(server.seen)


def app_server(env: dict[str, str], workers: int, log: Path, *, patched: bool = True) -> Any:
    """`python -m web serve --workers N --quiet`; `patched` applies bench/serve.py's TCP_NODELAY fix first."""
    args = ["web", "serve", "--workers", str(workers), "--quiet"]
    argv = [PY, str(BENCH / "serve.py"), *args] if patched else [PY, "-m", *args]
    name = f"app (workers={workers}{'' if patched else ', as shipped'})"
    return serving(name, argv, env, workers, log)


def bare_server(env: dict[str, str], workers: int, log: Path) -> Any:
    """The ceiling, served by uvicorn the same way as the app (and with the same fix)."""
    argv = [PY, str(BENCH / "serve.py"), "uvicorn", "--app-dir", str(BENCH), "bare_app:create_app", "--factory"]
    argv += ["--host", HOST, "--port", "{port}", "--workers", str(workers), "--log-level", "warning"]
    return serving(f"bare page (workers={workers})", argv, env, workers, log)


def keepalive_ms(port: int, requests: int = 25) -> float:
    """Median time of sequential GET /healthz on one keep-alive connection: ~0.3 ms, or ~40 ms with Nagle."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    times = []
    try:
        for _ in range(requests):
            started = time.perf_counter()
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            times.append(time.perf_counter() - started)
    finally:
        conn.close()
    return sorted(times)[len(times) // 2] * 1000


def load(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run the load generator (bench/loadgen.py) as its own process and return its JSON result."""
    proc = subprocess.Popen(
        [PY, str(BENCH / "loadgen.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    _children.append(proc)  # type: ignore[arg-type]
    try:
        out, err = proc.communicate(json.dumps(spec).encode(), timeout=timeout)
    finally:
        _end(proc)  # type: ignore[arg-type]
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}):\n{err.decode(errors='replace')[-2000:]}")
    return json.loads(out)


# ---- scenarios


@dataclass
class Result:
    backend: str
    scenario: str
    workers: int
    unit: str
    data: dict[str, Any]
    ratio: float | None = None
    bare: Result | None = None  # the ceiling this one is compared with

    @property
    def rate(self) -> float:
        return self.data["ops"] / self.data["seconds"] if self.data["seconds"] else 0.0

    def line(self) -> str:
        d, lat = self.data, self.data["latency"]
        ratio = f"{self.ratio:6.0%}" if self.ratio is not None else "     -"
        errors = sum(d["errors"].values())
        return (
            (
                f"  {self.scenario:<42} w={self.workers}  {self.rate:8.1f} {self.unit:<12} {ratio}  "
                f"p50 {lat['p50']:7.1f}  p95 {lat['p95']:7.1f}  p99 {lat['p99']:7.1f} ms  "
                f"server {self.split}  client {self.client_cores:4.2f}  {self.db_part}"
                f"other {self.other_cores:4.2f} cores  errors {errors}"
            )
            + "".join(
                f"\n    error ×{count}: {message}"
                for message, count in sorted(d["errors"].items(), key=lambda e: -e[1])[:3]
            )
            + "".join(
                f"\n    (meanwhile {name} used {cores:.2f} cores: these figures are lower for it)"
                for name, cores in d.get("others", [])
                if cores >= NOISE_CORES
            )
        )

    @property
    def split(self) -> str:
        """Server cores, and per worker: its share of CPU and of the load's connections."""
        d = self.data
        if len(d["server_cpu_by_worker"]) < 2:
            return f"{self.server_cores:4.2f} cores"
        cores = "+".join(f"{c / d['seconds']:.2f}" for c in d["server_cpu_by_worker"])
        conns = "/".join(str(n) for n in d["connections_by_worker"])
        return f"{self.server_cores:4.2f} cores ({cores}; connections {conns})"

    @property
    def server_cores(self) -> float:
        return self.data["server_cpu"] / self.data["seconds"] if self.data["seconds"] else 0.0

    @property
    def client_cores(self) -> float:
        return self.data["client_cpu"] / self.data["seconds"] if self.data["seconds"] else 0.0

    @property
    def db_part(self) -> str:
        return (
            f"PostgreSQL {self.database_cores:4.2f}  "
            if "database_cpu" in self.data and self.data.get("database_cpu")
            else ""
        )

    @property
    def database_cores(self) -> float:
        """PostgreSQL's backends for the benchmark's database (SQLite runs inside the workers)."""
        return self.data.get("database_cpu", 0.0) / self.data["seconds"] if self.data["seconds"] else 0.0

    @property
    def other_cores(self) -> float:
        """Everything else the machine did meanwhile: someone else's work, the kernel, PostgreSQL's own
        background processes."""
        d = self.data
        if not d["seconds"]:
            return 0.0
        return max(
            0.0, (d["machine_busy"] - d["server_cpu"] - d["client_cpu"] - d.get("database_cpu", 0)) / d["seconds"]
        )


@dataclass
class Options:
    workers: int
    compare_workers: int
    concurrency: int
    seconds: float
    warmup: float
    pin: int | None
    database: str | None = None  # PostgreSQL database name, so its backends' CPU is told apart
    quiet_budget: float = 60.0  # seconds, for the whole run, of waiting for other work to finish


def busy_cores(interval: float = 0.5) -> float:
    """How many cores the whole machine kept busy over `interval` seconds (/proc/stat)."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(values) - values[3] - values[4], sum(values)

    busy, total = sample()
    time.sleep(interval)
    busy2, total2 = sample()
    return (busy2 - busy) / max(1, total2 - total) * (os.cpu_count() or 1)


def wait_quiet(opts: Options) -> float:
    """Wait, within a bounded budget for the whole run, until nothing else keeps the machine busy (another
    test run, say), so it doesn't skew the next measurement; returns the background load last seen."""
    load = busy_cores()
    if load <= QUIET_CORES or opts.quiet_budget <= 0:
        return load
    started = time.perf_counter()
    print(f"  (other work keeps {load:.2f} cores busy: waiting up to {opts.quiet_budget:.0f} s", end="", flush=True)
    while load > QUIET_CORES and time.perf_counter() - started < opts.quiet_budget:
        time.sleep(1.0)
        load = busy_cores()
    waited = time.perf_counter() - started
    opts.quiet_budget -= waited
    print(f"; waited {waited:.0f} s, now {load:.2f})", flush=True)
    return load


def _spec(opts: Options, server: Server, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "host": HOST,
        "port": server.port,
        "concurrency": opts.concurrency,
        "warmup": opts.warmup,
        "seconds": opts.seconds,
        "server_pids": server.worker_pids(),
        "pin": opts.pin,
        "database": opts.database,
        **extra,
    }


def _run(opts: Options, server: Server, backend: str, scenario: str, unit: str, kind: str, **extra: Any) -> Result:
    wait_quiet(opts)
    data = load(_spec(opts, server, kind, **extra), timeout=opts.warmup + opts.seconds + 60)
    return Result(backend, scenario, server.workers, unit, data)


def _bare(opts: Options, env: dict[str, str], workers: int, logs: Path, backend: str) -> Result:
    with bare_server(env, workers, logs / f"bare-w{workers}.log") as server:
        cookie = fetch(server.port, "/login").headers["set-cookie"].split(";")[0]
        headers = [[["Cookie", cookie]] for _ in range(opts.concurrency)]
        result = _run(
            opts,
            server,
            backend,
            "bare Starlette+Jinja page",
            "req/s",
            "get",
            path="/",
            headers_per_vu=headers,
            status=200,
        )
    print(result.line(), flush=True)
    return result


@dataclass
class BackendRun:
    backend: str
    version: str
    seed_seconds: float = 0.0
    results: list[Result] = field(default_factory=list)
    sizes: dict[str, dict[str, int]] = field(default_factory=dict)
    static: dict[str, str] = field(default_factory=dict)
    rss: dict[str, list[float]] = field(default_factory=dict)
    keepalive: dict[str, float] = field(default_factory=dict)
    inproc: dict[str, Any] = field(default_factory=dict)

    def find(self, scenario: str, workers: int) -> Result | None:
        return next((r for r in self.results if r.scenario == scenario and r.workers == workers), None)


def _sizes(port: int, cookie: str) -> dict[str, dict[str, int]]:
    """Bytes of each response as sent (body, and headers on top), for the full page and the partial."""
    out = {}
    for label, path, extra in [
        ("Settings page (GET /settings)", "/settings", {}),
        ("Settings page, MFA expanded (GET /settings?section=mfa)", "/settings?section=mfa", {}),
        ("MFA partial (htmx)", "/settings?section=mfa", dict(HX_PARTIAL)),
    ]:
        got = fetch(port, path, {"Cookie": cookie, **extra})
        if got.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {got.status}")
        head = sum(len(k) + len(v) + 4 for k, v in got.headers.items()) + 17
        out[label] = {"body": len(got.body), "headers": head}
    return out


def _static(port: int) -> dict[str, str]:
    path = f"/static/app.css?v={static_version('app.css')}"
    got = fetch(port, path, {"Accept-Encoding": "gzip"})
    return {
        "path": path,
        "status": str(got.status),
        "cache-control": got.headers.get("cache-control", ""),
        "content-encoding": got.headers.get("content-encoding", ""),
        "bytes": str(len(got.body)),
        "original": str((ROOT / "static" / "app.css").stat().st_size),
    }


def address(member: seed.Seeded) -> str:
    """The member's own client address, from 198.18.0.0/15 (set aside for benchmarks, RFC 2544): only ever
    an X-Forwarded-For value here, no traffic goes to it."""
    return f"198.18.{member.id // 256 % 256}.{member.id % 256}"


def clear_throttle(engine: Engine) -> None:
    """Each scenario starts with no failure counts, so one scenario's errors can't throttle the next one
    (every request comes from 127.0.0.1, one key for the per-address rule)."""
    with engine.begin() as conn:
        conn.execute(delete(Throttle))


def run_backend(opts: Options, run: BackendRun, url: str, data_dir: Path, logs: Path, first: bool) -> None:
    opts.database = make_url(url).database if run.backend == "postgresql" else None
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ARGON2_TIME_COST": "5",
        "ARGON2_MEMORY_KIB": "65536",
        "DEBUG": "",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("MFA_ENCRYPTION_KEYS", None)  # the keyring comes from DATA_DIR, shared by seeding and the server
    settings = load_settings(env)
    engine = make_engine(url)
    try:
        members, run.seed_seconds = seed.seed(engine, settings, MEMBERS)
        print(
            f"  seeded {MEMBERS} members with MFA on in {run.seed_seconds:.1f} s "
            "(one argon2 password hash and one backup-code hash, reused for every member)",
            flush=True,
        )
        pools = {
            "users": members[:LOAD_USERS],
            "signin": members[LOAD_USERS : LOAD_USERS + SIGNIN_POOL],
            "stepup": members[LOAD_USERS + SIGNIN_POOL : MEMBERS - RESERVED],
        }
        reserved = members[MEMBERS - RESERVED :]
        stepup_cookies = seed.mint_sessions(engine, settings, pools["stepup"])
        _http_scenarios(opts, run, env, logs, pools, stepup_cookies, first, lambda: clear_throttle(engine))
        print("  in-process: SQL statements per request, CPU per request, profiles", flush=True)
        clear_throttle(engine)
        wait_quiet(opts)
        run.inproc = inprocess.measure(settings, reserved, BENCH / "results", run.backend)
    finally:
        engine.dispose()


def _http_scenarios(
    opts: Options,
    run: BackendRun,
    env: dict[str, str],
    logs: Path,
    pools: dict[str, list[seed.Seeded]],
    stepup_cookies: list[str],
    first: bool,
    reset: Callable[[], None],
) -> None:
    """Bare page, Settings page, MFA partial, sign-in and step-up at the chosen workers; the page scenarios
    again with the comparison worker count, and the server as shipped (first backend only: those two are
    about the HTTP layer, not the database)."""
    b = run.backend
    worker_counts = [opts.workers]
    if first and opts.compare_workers not in (0, opts.workers):
        worker_counts.append(opts.compare_workers)
    cookies: list[str] = []
    bare_rates: dict[int, Result] = {}
    for workers in worker_counts:
        bare = _bare(opts, env, workers, logs, b)
        run.results.append(bare)
        bare_rates[workers] = bare
        with app_server(env, workers, logs / f"app-w{workers}.log") as server:
            if not cookies:
                cookies = _sign_in_users(server, pools["users"])
                run.sizes = _sizes(server.port, cookies[0])
                run.static = _static(server.port)
            run.keepalive[f"workers={workers}, TCP_NODELAY fixed (bench/serve.py)"] = keepalive_ms(server.port)
            per_vu = [[["Cookie", c]] for c in cookies]
            for scenario, path, extra in PAGES:
                headers = [h + extra for h in per_vu]
                result = _run(opts, server, b, scenario, "req/s", "get", path=path, headers_per_vu=headers, status=200)
                result.ratio, result.bare = (result.rate / bare.rate if bare.rate else None), bare
                run.results.append(result)
                print(result.line(), flush=True)
            run.rss[f"workers={workers}, after the page scenarios"] = server.peak_rss_mib()
            if workers != opts.workers:
                continue
            reset()
            members = [[m.email, seed.PASSWORD, m.secret, address(m)] for m in pools["signin"]]
            result = _run(opts, server, b, "sign-in (4 requests)", "sign-ins/s", "signin", members=members, grace=0.5)
            run.results.append(result)
            print(result.line(), flush=True)
            reset()
            members = [[c, m.secret, address(m)] for c, m in zip(stepup_cookies, pools["stepup"], strict=True)]
            result = _run(opts, server, b, "step-up verify (GET+POST /reauth)", "verifies/s", "stepup", members=members)
            run.results.append(result)
            print(result.line(), flush=True)
            run.rss[f"workers={workers}, after sign-in and step-up"] = server.peak_rss_mib()
    if first and opts.workers > 1:
        with app_server(env, opts.workers, logs / "app-as-shipped.log", patched=False) as server:
            stalled = keepalive_ms(server.port)
            run.keepalive[f"workers={opts.workers}, as shipped (python -m web serve)"] = stalled
            print(
                f"  keep-alive GET /healthz as shipped with {opts.workers} workers: median {stalled:.1f} ms", flush=True
            )
            if stalled > STALL_MS:
                per_vu = [[["Cookie", c]] for c in cookies]
                scenario, path, _ = PAGES[0]
                result = _run(
                    opts,
                    server,
                    b,
                    scenario + ", as shipped (no TCP_NODELAY)",
                    "req/s",
                    "get",
                    path=path,
                    headers_per_vu=per_vu,
                    status=200,
                )
                ceiling = bare_rates[opts.workers]
                result.ratio, result.bare = (result.rate / ceiling.rate if ceiling.rate else None), ceiling
                run.results.append(result)
                print(result.line(), flush=True)


def _sign_in_users(server: Server, users: list[seed.Seeded]) -> list[str]:
    """The load users sign in over HTTP, the real way (argon2 included), once before measuring."""
    started = time.perf_counter()
    spec = {
        "kind": "login",
        "host": HOST,
        "port": server.port,
        "members": [[m.email, seed.PASSWORD, m.secret, address(m)] for m in users],
    }
    cookies = load(spec, timeout=120)["cookies"]
    print(
        f"  signed in {len(users)} load users over HTTP (real sign-in, argon2 included) "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return cookies


# ---- backends


@contextmanager
def sqlite_backend(tmp: Path) -> Iterator[tuple[str, str]]:
    yield f"sqlite:///{tmp / 'chat360.db'}", f"SQLite {sqlite3.sqlite_version} (WAL, file in a temp DATA_DIR)"


@contextmanager
def postgres_backend(base_url: str) -> Iterator[tuple[str, str]]:
    """A throwaway database `bench_<random>` on the server DATABASE_URL names, dropped afterwards."""
    name = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
            yield url, f"PostgreSQL {version} (database {name}, dropped afterwards)"
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


# ---- machine and report


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    mem = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
    return {
        "cores (nproc)": str(os.cpu_count()),
        "CPU": model.group(1).strip() if model else platform.processor(),
        "RAM": f"{int(mem.group(1)) / 1024 / 1024:.1f} GiB" if mem else "?",
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
    }


def _fmt_ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def cost_ratio(r: Result) -> str:
    """The bare page's worker CPU per request over this scenario's: the req/s ratio a quiet machine gives."""
    if r.bare is None or not r.data["ops"] or not r.bare.data["ops"]:
        return "-"
    mine = r.data["server_cpu"] / r.data["ops"] * 1000
    ceiling = r.bare.data["server_cpu"] / r.bare.data["ops"] * 1000
    return f"{ceiling / mine:.0%} ({mine:.2f} vs {ceiling:.2f} ms)"


def noise(*results: Result | None) -> str:
    """A warning when other work on the machine took CPU during any of these measurements."""
    worst = max((r.other_cores for r in results if r is not None), default=0.0)
    return f" (unreliable: other work used up to {worst:.2f} cores meanwhile)" if worst > QUIET_CORES else ""


def targets(run: BackendRun, opts: Options, hash_cost: dict[str, float]) -> list[tuple[str, str, bool]]:
    """(target, measured, passed) for this backend."""
    out = []
    for scenario in ("Settings page", "MFA partial (htmx)"):
        r = run.find(scenario, opts.workers)
        if r and r.ratio is not None:
            out.append(
                (
                    f"{scenario} ≥ {TARGET_RATIO:.0%} of the bare page's req/s (w={opts.workers})",
                    f"{r.ratio:.0%} ({r.rate:.0f} vs {r.rate / r.ratio:.0f} req/s){noise(r, r.bare)}; by worker CPU "
                    f"per request {cost_ratio(r)} (other work on the machine barely changes this one)",
                    r.ratio >= TARGET_RATIO,
                )
            )
    counts = run.inproc.get("counts", {})
    for name in ("GET /settings", "GET /settings?section=mfa (htmx partial)"):
        if name in counts:
            n = counts[name]["statements"]
            out.append((f"≤ 2 SQL statements for an authenticated page: {name}", str(n), n <= 2))
    if "GET /static/app.css" in counts:
        n = counts["GET /static/app.css"]["statements"]
        out.append(("0 SQL statements for a static asset", str(n), n == 0))
    full = run.sizes.get("Settings page, MFA expanded (GET /settings?section=mfa)", {}).get("body", 0)
    part = run.sizes.get("MFA partial (htmx)", {}).get("body", 0)
    if full:
        out.append(
            (
                f"htmx partial < {TARGET_PARTIAL_BYTES:.0%} of the full page's bytes",
                f"{part} / {full} B = {part / full:.1%}",
                part / full < TARGET_PARTIAL_BYTES,
            )
        )
    signin = next((p for p in run.inproc.get("profiles", []) if p.name == "Sign-in"), None)
    if signin:
        rest = signin.per_op_ms - signin.hash_ms
        live = run.find("sign-in (4 requests)", opts.workers)
        served = ""
        if live and live.data["ops"]:
            per = live.data["server_cpu"] / live.data["ops"] * 1000
            served = (
                f"; served over HTTP about {per:.0f} ms of worker CPU per sign-in, "
                f"{live.rate:.1f}/s × {hash_cost['parallel_cpu'] * 1000:.0f} ms = "
                f"{live.rate * hash_cost['parallel_cpu']:.2f} of {os.cpu_count()} cores hashing"
            )
        out.append(
            (
                f"sign-in: everything but the hash < {TARGET_SIGNIN_REST:.0%} of the hash's cost",
                f"in-process {rest:.1f} ms of CPU besides the hash's {signin.hash_ms:.0f} ms = "
                f"{rest / signin.hash_ms:.1%}{served}",
                rest / signin.hash_ms < TARGET_SIGNIN_REST,
            )
        )
    for where, ms in run.keepalive.items():
        if "as shipped" in where:
            out.append(
                (
                    f"keep-alive requests not stalled by Nagle + delayed ACK ({where})",
                    f"median {ms:.1f} ms per sequential GET /healthz",
                    ms < STALL_MS,
                )
            )
    if run.static:
        cache_ok = "max-age=31536000" in run.static["cache-control"] and "immutable" in run.static["cache-control"]
        out.append(("static asset: long-lived Cache-Control", run.static["cache-control"], cache_ok))
        out.append(
            (
                "static asset: gzip with Accept-Encoding: gzip",
                f"Content-Encoding: {run.static['content-encoding'] or '(none)'}, "
                f"{run.static['bytes']} of {run.static['original']} B",
                run.static["content-encoding"] == "gzip",
            )
        )
    return out


def client_loop(runs: list[BackendRun]) -> str:
    """The load generator's event loop: uvloop when it is installed, else asyncio's own."""
    return next((r.data.get("loop", "asyncio") for run in runs for r in run.results), "asyncio")


def report(
    opts: Options, runs: list[BackendRun], hash_cost: dict[str, float], info: dict[str, str], took: float
) -> str:
    """The Markdown written to docs/benchmarks.md (and printed)."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`bench/run.py`); every figure below is from the run on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, which took {took:.0f} s. Targets are checked here, "
        "never asserted in tests.",
        "",
        "## Machine and settings",
        "",
        "| | |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in info.items()],
        *[f"| database | {r.version} |" for r in runs],
        f"| server | uvicorn (h11, asyncio loop: as `python -m web serve --workers N --quiet`), {opts.workers} "
        f"worker(s); again with {opts.compare_workers} for comparison |",
        f"| load | a separate process (`bench/loadgen.py`, raw asyncio HTTP/1.1 keep-alive, {client_loop(runs)} "
        f"event loop{f', pinned to CPU {opts.pin}' if opts.pin is not None else ''}), {opts.concurrency} "
        f"virtual users, closed loop, {opts.warmup:g} s warm-up then {opts.seconds:g} s measured |",
        f"| password hash | argon2id time_cost={hash_cost['time_cost']}, memory={hash_cost['memory_kib']} KiB, "
        f"parallelism={hash_cost['parallelism']}: one verification costs {hash_cost['cpu'] * 1000:.0f} ms of CPU "
        f"({hash_cost['wall'] * 1000:.0f} ms wall), timed in-process; {hash_cost['parallel_cpu'] * 1000:.0f} ms "
        f"each when {hash_cost['parallel']} run at once, one per core |",
        "",
        "How to read it:",
        "",
        "- The server, the load generator and PostgreSQL share 2 cores: CPU the client takes, the server "
        "doesn't get. Each row says how many cores the server's workers (and, per worker, their share of CPU "
        "and of the 16 connections), the client, PostgreSQL's backends for the benchmark's database and "
        "everything else (`other`: the kernel, or someone else's work on the machine) used in the measured "
        "window. A run waits (bounded) for other work to stop before each measurement, and names any process "
        "that still took CPU during one.",
        "- uvicorn 0.54 leaves TCP_NODELAY off with `--workers N` (Kludex/uvicorn#3149): every keep-alive "
        "request after the first then waits ~40 ms for a delayed ACK. `python -m web serve` sets it itself "
        "(`web/serving.py`); the bare page's plain uvicorn gets the same fix from `bench/serve.py`, so both "
        "are measured without the stall. The keep-alive check below runs the app exactly as shipped.",
        "- The load generator spreads its 16 keep-alive connections evenly over the workers (it checks in "
        "/proc which worker accepted each one): uvicorn's workers share one socket, and a burst of connects "
        "can otherwise all land on one worker for the whole run.",
        "- Seeding writes the rows a real enrolment leaves (member, encrypted TOTP secret, ten backup codes) "
        "through the models, reusing one argon2 password hash (production parameters) and one backup-code "
        "hash for every member. The 16 load users (one per virtual user) sign in over HTTP, the real way, "
        "before the measurement. The step-up pool's sessions are made in the database (`db.signins.start` "
        "and a cookie signed as `web/cookies.py` does): a TOTP code is single use per member per 30 s, and "
        "signing 1,500 members in over HTTP would cost minutes of argon2.",
        "- Sign-in and step-up send each member's own address as X-Forwarded-For (198.18.0.0/15, trusted "
        "from 127.0.0.1 as from a reverse proxy), as members behind a proxy do: the per-address throttle "
        "then counts per member, as it would in production.",
        "",
    ]
    for run in runs:
        pg = run.backend == "postgresql"
        lines += [f"## {run.version}", ""]
        lines += [
            "| scenario | workers | rate | × bare | p50 ms | p95 ms | p99 ms | server cores | client cores "
            "| database cores | other | server CPU ms/op | client CPU ms/op | errors |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in run.results:
            lat, d = r.data["latency"], r.data
            ops = max(1, d["ops"])
            ratio = f"{r.ratio:.0%}" if r.ratio is not None else "1 (ceiling)" if r.scenario.startswith("bare") else ""
            lines.append(
                f"| {r.scenario} | {r.workers} | {r.rate:.1f} {r.unit} | {ratio} | {_fmt_ms(lat['p50'])} | "
                f"{_fmt_ms(lat['p95'])} | {_fmt_ms(lat['p99'])} | {r.split} | {r.client_cores:.2f} | "
                f"{f'{r.database_cores:.2f}' if pg else 'in the workers'} | {r.other_cores:.2f} | "
                f"{d['server_cpu'] / ops * 1000:.2f} | {d['client_cpu'] / ops * 1000:.2f} | "
                f"{sum(d['errors'].values())} |"
            )
        noisy = [
            f"{r.scenario} (w={r.workers}): {name} {cores:.2f}"
            for r in run.results
            for name, cores in r.data.get("others", [])
            if cores >= NOISE_CORES
        ]
        if noisy:
            lines += [
                "",
                "Other processes that took CPU during a measurement (not part of the benchmark; those "
                "figures are lower than on a quiet machine): " + "; ".join(noisy) + ".",
            ]
        errors = {k: v for r in run.results for k, v in r.data["errors"].items()}
        if errors:
            lines += ["", "Errors: " + "; ".join(f"{k} ×{v}" for k, v in errors.items())]
        signin = run.find("sign-in (4 requests)", opts.workers)
        if signin:
            busy = signin.rate * hash_cost["parallel_cpu"]
            lines += [
                "",
                f"Sign-ins: {signin.rate:.1f}/s × {hash_cost['parallel_cpu'] * 1000:.0f} ms per hash (one per core "
                f"at once) = {busy:.2f} cores busy hashing, of {os.cpu_count()} "
                f"({busy / (os.cpu_count() or 1):.0%}); the workers used {signin.server_cores:.2f} cores, the load "
                f"process {signin.client_cores:.2f}. The ceiling the hash alone sets: "
                f"{(os.cpu_count() or 1) / hash_cost['parallel_cpu']:.1f} sign-ins/s.",
            ]
        lines += ["", "Bytes per response (body; headers on top):", ""]
        lines += ["| response | body bytes | header bytes |", "| --- | ---: | ---: |"]
        lines += [f"| {k} | {v['body']} | {v['headers']} |" for k, v in run.sizes.items()]
        lines += [
            "",
            "SQL statements per request (SQLAlchemy `before_cursor_execute`, app in-process over the "
            "same database; `checkouts` = connections taken from the pool):",
            "",
        ]
        lines += [
            f"| request | statements | checkouts |{' round trips |' if pg else ''}",
            f"| --- | ---: | ---: |{' ---: |' if pg else ''}",
        ]
        counts = run.inproc.get("counts", {})
        for name, c in counts.items():
            trips = f" {c['round_trips']} |" if pg else ""
            lines.append(f"| {name} | {c['statements']} | {c['checkouts']} |{trips}")
        signin_names = ["GET /login", "POST /login", "GET /login/verify", "POST /login/verify"]
        if all(n in counts for n in signin_names):
            total = sum(counts[n]["statements"] for n in signin_names)
            checkouts = sum(counts[n]["checkouts"] for n in signin_names)
            trips = f" {sum(counts[n]['round_trips'] for n in signin_names)} |" if pg else ""
            lines.append(f"| a whole sign-in (the 4 above) | {total} | {checkouts} |{trips}")
        lines += ["", "Keep-alive latency, sequential GET /healthz on one connection (median):", ""]
        lines += [f"- {k}: {v:.2f} ms" for k, v in run.keepalive.items()]
        lines += ["", "Peak memory (VmHWM) per uvicorn worker process:", ""]
        lines += [f"- {k}: " + ", ".join(f"{v:.0f} MiB" for v in vals) for k, vals in run.rss.items()]
        lines += ["", "App CPU per operation in-process (ASGI called directly: no HTTP server, no client):", ""]
        for p in run.inproc.get("profiles", []):
            extra = f" (argon2 {p.hash_ms:.1f} ms + the rest {p.per_op_ms - p.hash_ms:.1f} ms)" if p.hash_ms else ""
            live = run.find(LIVE_NAMES.get(p.name, ""), opts.workers)
            served = (
                f"; served over HTTP it took {live.data['server_cpu'] / max(1, live.data['ops']) * 1000:.2f} ms "
                "of worker CPU"
                if live
                else ""
            )
            lines.append(f"- {p.name}: {p.per_op_ms:.2f} ms of CPU, {p.wall_ms:.2f} ms wall{extra}{served}")
        lines += [
            "",
            "Where the time goes (pyinstrument, wall time: its share of the profiled operation, and that share "
            "of the unprofiled wall time per operation):",
            "",
        ]
        for p in run.inproc.get("profiles", []):
            lines += [f"**{p.name}**", "", "```"]
            lines += [
                f"{share:6.1%} {share * p.wall_ms:6.2f} ms  {'  ' * depth}{label}"
                for depth, label, share in p.breakdown
            ]
            lines += ["", "top self time:"]
            lines += [f"{share:6.1%}  {fn}" for fn, share in p.top_self[:8]]
            lines += ["```", ""]
        lines += ["### Targets", "", "| target | measured | |", "| --- | --- | --- |"]
        lines += [f"| {t} | {m} | {'PASS' if ok else 'FAIL'} |" for t, m, ok in targets(run, opts, hash_cost)]
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument(
        "--compare-workers",
        type=int,
        default=1,
        help="also run the page scenarios with this "
        "many workers, to show the server/client CPU contention (0: skip; default 1)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="virtual users (default 16)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per scenario (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per scenario (default 2)")
    parser.add_argument("--pin", type=int, default=None, help="pin the load process to this CPU")
    parser.add_argument("--no-docs", action="store_true", help="don't write docs/benchmarks.md")
    args = parser.parse_args(argv)
    opts = Options(args.workers, args.compare_workers, args.concurrency, args.seconds, args.warmup, args.pin)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    started = time.perf_counter()
    pg_url = os.environ.get("DATABASE_URL", "")
    runs: list[BackendRun] = []
    try:
        info = machine()
        print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
        # The production parameters: whatever Settings defaults to with no ARGON2_* in the environment.
        hash_settings = load_settings(
            {"DATA_DIR": tempfile.gettempdir(), "SECRET_KEY": "-", "MFA_ENCRYPTION_KEYS": new_key()}
        )
        hash_cost = inprocess.hash_cost(hash_settings)
        print(
            f"argon2id t={hash_cost['time_cost']} m={hash_cost['memory_kib']} KiB p={hash_cost['parallelism']}: "
            f"{hash_cost['cpu'] * 1000:.0f} ms CPU per verification "
            f"({hash_cost['parallel_cpu'] * 1000:.0f} ms each with {hash_cost['parallel']} at once)",
            flush=True,
        )
        backends: list[Any] = [("sqlite", None)]
        if pg_url.startswith("postgresql"):
            backends.append(("postgresql", pg_url))
        elif pg_url:
            print(f"DATABASE_URL is not PostgreSQL ({pg_url.split(':')[0]}): SQLite only", flush=True)
        else:
            print("DATABASE_URL is not set: SQLite only (set postgresql+psycopg://… for the second pass)", flush=True)
        for kind, url in backends:
            with tempfile.TemporaryDirectory(prefix="chat360-bench-") as tmp:
                data_dir = Path(tmp)
                logs = data_dir / "logs"
                logs.mkdir()
                db = sqlite_backend(data_dir) if kind == "sqlite" else postgres_backend(url)
                with db as (db_url, version):
                    print(f"\n== {version}", flush=True)
                    run = BackendRun(kind, version)
                    runs.append(run)
                    run_backend(opts, run, db_url, data_dir, logs, first=not runs[:-1])
        took = time.perf_counter() - started
        text_out = report(opts, runs, hash_cost, info, took)
        print()
        for run in runs:
            print(f"== {run.version}: targets")
            for target, measured, ok in targets(run, opts, hash_cost):
                print(f"  {'PASS' if ok else 'FAIL'}  {target}: {measured}")
        if not args.no_docs:
            (ROOT / "docs" / "benchmarks.md").write_text(text_out)
            print(f"\nwrote docs/benchmarks.md ({took:.0f} s)")
        (BENCH / "results").mkdir(exist_ok=True)
        (BENCH / "results" / "latest.md").write_text(text_out)
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted: servers and load processes stopped", file=sys.stderr)
        return 130
    finally:
        _end_all()


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: the app's request path beside the bare-stack ceiling, on one machine in one run.

Seeds members through the app's services and the same members into the ceiling's own tables
(bench/bare_db.py), serves the app (`python -m web serve`) and the ceiling (bench/bare_app.py: a bare page
and a minimal real sign-in on the bare stack) the same way, drives the pages with wrk and both sign-ins
with the same client (bench/signin.py), and prints the table (bench/report.py), also written to
docs/benchmarks.md. With two or more cores the
server is pinned to core 0 and the load tool to core 1. SQLite by default; PostgreSQL when
BENCH_DATABASE_URL names a database. `--profile` serves the app under pyinstrument for the Settings load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import bare_db
import httpx2 as httpx
import report
import seed
import sqlcount
from cryptography.fernet import Fernet
from signin import sign_in

from db.engine import make_engine
from web.app import hasher_for
from web.config import Settings, load_settings

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PY = sys.executable
TICK = os.sysconf("SC_CLK_TCK")
PARTIAL = {"HX-Request": "true", "HX-Request-Type": "partial"}
PINNED = (os.cpu_count() or 1) >= 2
Command = Callable[[int], tuple[list[str], dict[str, str]]]  # a server's argv and environment for a port
SERVER_CPU, LOAD_CPU = (["taskset", "-c", "0"], ["taskset", "-c", "1"]) if PINNED else ([], [])


def ensure_wrk() -> None:
    """wrk from Debian, installed when missing (as scripts/ensure-system-packages does for its tools)."""
    if shutil.which("wrk"):
        return
    if os.geteuid() != 0:
        sys.exit("bench: wrk is missing; install it with: sudo apt-get install -y wrk")
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"], check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    )


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and its children (uvicorn's workers), from /proc."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / TICK
    return total


@contextmanager
def serving(command: Command, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A server process group on a free port (`command(port)` gives its argv and environment) and its base
    URL, ready when /healthz answers; SIGINT on exit (pyinstrument writes then)."""
    port = free_port()
    argv, env = command(port)
    with log.open("ab") as out:
        proc = subprocess.Popen(SERVER_CPU + argv, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"server did not start; see {log}")
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)


def wrk(url: str, cookie: str, seconds: int, headers: dict[str, str], pid: int) -> dict[str, float]:
    """req/s, p50 ms and server CPU ms per request for one wrk run (1 thread, 16 connections)."""
    args = ["wrk", "-t1", "-c16", f"-d{seconds}s", "--latency", "-H", f"Cookie: {cookie}"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    before = cpu_seconds(pid)
    out = subprocess.run(LOAD_CPU + args + [url], capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pid) - before
    rate = float(_field(r"Requests/sec:\s+([\d.]+)", out))
    if "Non-2xx" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    return {
        "rps": rate,
        "p50": _ms(_field(r"^\s+50%\s+(\S+)", out)),
        "cpu_ms": 1000 * cpu / (rate * seconds),
    }


def _field(pattern: str, text: str) -> str:
    found = re.search(pattern, text, re.M)
    if found is None:
        raise RuntimeError(f"wrk printed no {pattern!r}:\n{text}")
    return found.group(1)


def _ms(text: str) -> float:
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * scale
    raise ValueError(text)


def flows(base: str, members: Path, seconds: int, pid: int, *, quiet: bool = False) -> dict[str, float]:
    """Sign-ins per second, p50 of the fourth request, server CPU ms per sign-in (a failed one raises).
    `quiet`: running out of members is expected (only the CPU per sign-in is wanted)."""
    argv = [PY, str(BENCH / "signin.py"), base, str(members), str(seconds), "8"]
    before = cpu_seconds(pid)
    result = json.loads(subprocess.run(LOAD_CPU + argv, stdout=subprocess.PIPE, text=True, check=True).stdout)
    cpu = cpu_seconds(pid) - before
    if result["idle"] and not quiet:
        print(
            f"bench: {base}: the virtual users ran out of members for {result['idle']:.1f} s; the sign-in rate "
            "is bound by --members, not by the server (CPU per sign-in is not affected)",
            file=sys.stderr,
        )
    done = result["flows"]
    last = sorted(f[3] for f in done)
    return {
        "rate": len(done) / result["seconds"],
        "p50": 1000 * last[len(last) // 2],
        "cpu_ms": 1000 * cpu / len(done),
        "cores": cpu / result["seconds"],
    }


def cookie_for(base: str, member: dict[str, str] | None) -> str:
    """A real session cookie: the member signed in over HTTP (or the ceiling's GET /login, which starts one)."""

    async def go() -> str:
        async with httpx.AsyncClient(base_url=base, headers={"Origin": base}) as client:
            if member is None:
                (await client.get("/login")).raise_for_status()
            else:
                await sign_in(client, member, [])
            return "; ".join(f"{name}={value}" for name, value in client.cookies.items())

    return asyncio.run(go())


def hash_ms(settings: Settings) -> float:
    """CPU ms of one password verification with the running config, on the server's core (median of 5)."""
    hasher = hasher_for(settings)
    stored = hasher.hash(seed.PASSWORD)
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {0})
    try:
        runs = []
        for _ in range(5):
            started = time.process_time()
            hasher.verify(stored, seed.PASSWORD)
            runs.append(1000 * (time.process_time() - started))
    finally:
        os.sched_setaffinity(0, cores)
    return sorted(runs)[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ceiling_env(env: dict[str, str], settings: Settings, data: Path) -> dict[str, str]:
    """The ceiling's configuration: the app's argon2 parameters, its own Fernet key, and its own database
    (a file beside the app's on SQLite; the app's PostgreSQL database, in its own `bare_` tables)."""
    url = env["DATABASE_URL"]
    return env | {
        "BARE_DATABASE_URL": url if url.startswith("postgresql") else f"sqlite:///{data / 'bare.db'}",
        "BARE_TOTP_KEY": Fernet.generate_key().decode(),
        "ARGON2_TIME_COST": str(settings.argon2_time_cost),
        "ARGON2_MEMORY_KIB": str(settings.argon2_memory_kib),
    }


def measure(
    args: argparse.Namespace, env: dict[str, str], members: Path, member: dict[str, str], log: Path
) -> dict[str, dict[str, float]]:
    """The ceiling, then the app, each on a fresh server with the same worker count. `env` holds the
    ceiling's configuration too; the app reads none of it."""
    results: dict[str, dict[str, float]] = {}
    seconds = args.seconds
    with serving(ceiling_server(args, env), log) as (bare, base):
        results["page_ceiling"] = wrk(base + "/", cookie_for(base, None), seconds, {}, bare.pid)
        results["flow_ceiling"] = flows(base, members, seconds, bare.pid)
    with serving(app_server(args, env), log) as (app, base):
        cookie = cookie_for(base, member)
        results["settings"] = wrk(base + "/settings?section=mfa", cookie, seconds, {}, app.pid)
        results["partial"] = wrk(base + "/settings?section=mfa", cookie, seconds, PARTIAL, app.pid)
        results["signin"] = flows(base, members, seconds, app.pid)
    return results


def ceiling_server(args: argparse.Namespace, env: dict[str, str]) -> Command:
    return lambda port: ([PY, str(BENCH / "bare_app.py"), str(port), str(args.workers)], env)


def app_server(args: argparse.Namespace, env: dict[str, str], *, under: list[str] | None = None) -> Command:
    """The app as `python -m web serve` runs it (`under` a profiler, for --profile)."""
    argv = (under or [PY]) + ["-m", "web", "serve", "--workers", str(args.workers), "--quiet"]
    return lambda port: (argv, env | {"PORT": str(port)})


CHEAP_HASH = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "8"}


def without_hash(args: argparse.Namespace, url: str | None, log: Path) -> dict[str, float]:
    """A sign-in's CPU without the password hash, measured directly: both servers again, on members whose
    passwords are hashed with argon2id at t=1, m=8 KiB (microseconds), so what a flow costs is the rest of
    the sign-in. Subtracting a separately timed 20–30 ms hash from the full run left the ceiling's few
    milliseconds inside the hash's own run-to-run noise. Both serve at once and take turns, in rounds of
    their own members, so a drift of the machine's speed (seen here: a third between runs) hits both alike;
    the ratio is the median of the rounds' ratios."""
    with tempfile.TemporaryDirectory(prefix="bench-nohash-") as tmp:
        data = Path(tmp)
        env = environment(data, url) | CHEAP_HASH
        settings = load_settings(env)
        engine = make_engine(env["DATABASE_URL"])
        members = seed.seed(engine, settings, args.members)
        engine.dispose()
        seed.save(members, data / "members.json")
        env = ceiling_env(env, settings, data)
        bare_db.prepare(env, data / "members.json")
        slices = []
        for r in range(ROUNDS):  # each round its own members: a TOTP code is good once per 30 s step
            slices.append(data / f"round{r}.json")
            seed.save(members[r::ROUNDS], slices[-1])
        app_ms, ceiling_ms = [], []
        ceiling, app = serving(ceiling_server(args, env), log), serving(app_server(args, env), log)
        with ceiling as (bare, bare_base), app as (server, base):
            for part in slices:
                ceiling_ms.append(flows(bare_base, part, ROUND_SECONDS, bare.pid, quiet=True)["cpu_ms"])
                app_ms.append(flows(base, part, ROUND_SECONDS, server.pid, quiet=True)["cpu_ms"])
    ratios = sorted(a / c for a, c in zip(app_ms, ceiling_ms, strict=True))
    return {
        "app": statistics.median(app_ms),
        "ceiling": statistics.median(ceiling_ms),
        "ratio": statistics.median(ratios),
        "low": ratios[0],
        "high": ratios[-1],
        "rounds": ROUNDS,
    }


ROUNDS, ROUND_SECONDS = 3, 4  # the ceiling, then the app, in turn: a drift of the machine's speed hits both


def environment(data: Path, url: str | None) -> dict[str, str]:
    """The servers' environment: SQLite in `data` unless a PostgreSQL URL is given."""
    database = url or f"sqlite:///{data / 'bench.db'}"
    return {
        **os.environ,
        "DATA_DIR": str(data),
        "DATABASE_URL": database,
        "HOST": "127.0.0.1",
        "PYTHONPATH": str(BENCH),
    }


def profile(args: argparse.Namespace, env: dict[str, str], member: dict[str, str], log: Path) -> None:
    """The Settings load against the app under pyinstrument (one worker); the text profile goes to a file."""
    out = ROOT / "data" / "bench-profile.txt"
    out.parent.mkdir(exist_ok=True)
    under = [PY, "-m", "pyinstrument", "-r", "text", "-o", str(out)]
    with serving(app_server(args, env, under=under), log) as (app, base):
        cookie = cookie_for(base, member)
        print(wrk(base + "/settings?section=mfa", cookie, args.seconds, {}, app.pid))
    print(f"profile of the Settings page load written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument(
        "--members", type=int, default=300, help="each signs in once per 30 s step; the faster server must not run out"
    )
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    ensure_wrk()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        data = Path(tmp)
        env = environment(data, os.environ.get("BENCH_DATABASE_URL"))
        url = env["DATABASE_URL"]
        settings = load_settings(env)
        engine = make_engine(url)
        started = time.perf_counter()
        members = seed.seed(engine, settings, 3 if args.profile else args.members)
        engine.dispose()
        print(f"seeded {len(members)} members in {time.perf_counter() - started:.1f} s", flush=True)
        seed.save(members[2:], data / "members.json")
        log = ROOT / "data" / "bench-servers.log"
        log.parent.mkdir(exist_ok=True)
        if args.profile:
            return profile(args, env, members[1], log)
        env = ceiling_env(env, settings, data)
        bare_db.prepare(env, data / "members.json")
        statements = sqlcount.count_statements(settings, members[0])
        cost = hash_ms(settings)
        results = measure(args, env, data / "members.json", members[1], log)
    results["without_hash"] = without_hash(args, os.environ.get("BENCH_DATABASE_URL"), log)
    text = report.render(url, settings, args, results, statements, cost, PINNED)
    print(text)
    report.write(ROOT / "docs" / "benchmarks.md", url, text)


if __name__ == "__main__":
    main()

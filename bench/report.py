"""The table `make bench` prints, with the issue's targets beside the figures, and its place in
docs/benchmarks.md (one section per database, replaced on each run)."""

from __future__ import annotations

import argparse
import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

from web.config import Settings


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def database(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"


def render(
    url: str,
    settings: Settings,
    args: argparse.Namespace,
    r: dict[str, dict[str, float]],
    statements: dict[str, int],
    hash_ms: float,
    pinned: bool,
) -> str:
    page, flow, signin = r["page_ceiling"], r["flow_ceiling"], r["signin"]
    floor = 0.40 if database(url) == "SQLite" else 0.30
    nohash = r["without_hash"]
    non_hash, ceiling_non_hash, nohash_ratio = nohash["app"], nohash["ceiling"], nohash["ratio"]
    bare_requests = 4 * page["cpu_ms"]
    rows = [
        ("Settings, MFA expanded (req/s)", r["settings"]["rps"], page["rps"], f"≥ {floor:.0%}", None),
        ("MFA partial, htmx (req/s)", r["partial"]["rps"], page["rps"], "", None),
        ("whole sign-in, 4 requests (sign-ins/s)", signin["rate"], flow["rate"], "", None),
    ]
    lines = [
        f"### {database(url)}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{platform.processor() or platform.machine()}, {len_cores()} cores; "
        + ("server pinned to core 0, load tool to core 1" if pinned else "server and load tool unpinned")
        + f"; uvicorn httptools + uvloop, {args.workers} worker(s); {args.seconds} s per measurement; "
        f"wrk -t1 -c16 for pages, bench/signin.py with 8 virtual users for flows; "
        f"load average {os.getloadavg()[0]:.1f} at the end (other people's work on the same cores).",
        "",
        "| measurement | app | ceiling | app ÷ ceiling | target | |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, app, ceiling, target, _ in rows:
        ratio = app / ceiling
        verdict = _verdict(ratio >= floor) if target else ""
        lines.append(f"| {name} | {app:.1f} | {ceiling:.1f} | {ratio:.0%} | {target} | {verdict} |")
    for name, key in (("Settings p50 (ms)", "settings"), ("MFA partial p50 (ms)", "partial")):
        lines.append(f"| {name} | {r[key]['p50']:.2f} | {page['p50']:.2f} | {r[key]['p50'] / page['p50']:.1f}× | | |")
    step = signin["p50"] / flow["p50"]
    lines += [
        f"| second step (POST /login/verify) p50 under sign-in load (ms) | {signin['p50']:.1f} | {flow['p50']:.1f} "
        f"| {step:.1f}× | ≤ 3× | {_verdict(step <= 3)} |",
        f"| server CPU per sign-in, without the hash (ms; median of {nohash['rounds']:.0f} rounds, each ceiling then "
        f"app; ratio range {nohash['low']:.1f}–{nohash['high']:.1f}×) | {non_hash:.1f} | {ceiling_non_hash:.1f} "
        f"| {nohash_ratio:.1f}× | ≤ 2× | {_verdict(nohash_ratio <= 2)} |",
        f"| the same against four bare requests, no sign-in work (4 × the page ceiling's CPU, ms) | {non_hash:.1f} "
        f"| {bare_requests:.1f} | {non_hash / bare_requests:.1f}× | | |",
        f"| server CPU per request, Settings (ms) | {r['settings']['cpu_ms']:.2f} | {page['cpu_ms']:.2f} "
        f"| {r['settings']['cpu_ms'] / page['cpu_ms']:.1f}× | | |",
        "",
        f"Sign-ins per core: {signin['rate'] / signin['cores']:.1f} (the server used {signin['cores']:.2f} cores); "
        f"one password hash costs {hash_ms:.1f} ms of CPU (argon2id m={settings.argon2_memory_kib} KiB, "
        f"t={settings.argon2_time_cost}, p=1), of {signin['cpu_ms']:.1f} ms per sign-in "
        f"({flow['cpu_ms']:.1f} ms in the ceiling's). "
        "The ceiling's sign-in is a minimal real one on the bare stack (bench/bare_signin.py): the same four "
        "requests, with CSRF, throttle, argon2id, a TOTP code used once, a rotated session and a log row, "
        "driven by the same client. CPU without the hash is measured directly: rounds of the ceiling then the app, "
        "both serving at once, on members whose passwords are hashed at argon2id t=1, m=8 KiB.",
        "",
        "SQL statements (SQLAlchemy `before_cursor_execute`, in-process over the same database): "
        + "; ".join(f"{name}: {count}" for name, count in statements.items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


def len_cores() -> int:
    return os.cpu_count() or 1


def write(path: Path, url: str, text: str) -> None:
    """Replace this database's section of `path` (between its markers), or append it."""
    start, end = f"<!-- bench:{database(url)} -->", f"<!-- /bench:{database(url)} -->"
    block = f"{start}\n{text}{end}"
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    path.write_text(
        pattern.sub(lambda _: block, old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + block + "\n"
    )

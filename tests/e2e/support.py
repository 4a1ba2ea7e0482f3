"""Helpers for the browser tests: accessibility audit, QR decoding, TOTP codes, CSP console collection.

Everything here is independent of the app's own code on purpose: a test that computed its TOTP codes or
decoded its QR codes with the app's modules would pass even when those modules are wrong.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Error, Page

VENDOR_DIR = Path(__file__).parent / "vendor"
AXE_PATH = VENDOR_DIR / "axe.min.js"
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa")
# Chromium 156 words violations "Executing inline script violates the following Content Security Policy
# directive ..."; older builds said "Refused to ...". Match both.
CSP_MARKERS = ("Content Security Policy", "Refused to")
TOTP_PERIOD = 30


def free_port() -> int:
    """Return a TCP port that was free a moment ago (the OS picks it, so parallel runs do not collide)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------------
# Accessibility (axe-core)
# --------------------------------------------------------------------------------------------------


@cache
def _axe_source() -> str:
    return AXE_PATH.read_text(encoding="utf-8")


_AXE_RUN = """
async ([context, options]) => {
    const results = await window.axe.run(context ?? document, options);
    return results.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl, tags: v.tags,
        nodes: v.nodes.map(n => ({target: n.target, html: n.html, failureSummary: n.failureSummary})),
    }));
}
"""


def axe_violations(
    page: Page,
    tags: Sequence[str] = DEFAULT_AXE_TAGS,
    *,
    context: str | None = None,
    disabled_rules: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Run axe-core on the current page and return its violations (empty list = clean).

    The vendored axe source is injected with ``page.evaluate``: DevTools evaluation is not subject to the
    page's CSP, whereas ``add_script_tag(content=...)`` would be an inline script that ``script-src 'self'``
    blocks (and that the CSP collector would then report). ``context`` is an optional CSS selector.

    Needs a page with JavaScript enabled: axe awaits timers, which never fire in a context created with
    ``java_script_enabled=False``, so there the call would hang. Pages from the ``page_nojs`` fixture carry
    ``javascript_enabled = False`` and are refused at once.
    """
    if getattr(page, "javascript_enabled", True) is False:
        raise RuntimeError("axe cannot run with JavaScript disabled (its timers never fire); use a JS page")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    options: dict[str, Any] = {"runOnly": {"type": "tag", "values": list(tags)}, "resultTypes": ["violations"]}
    rules = {rule: {"enabled": False} for rule in disabled_rules}
    if rules:
        options["rules"] = rules
    return page.evaluate(_AXE_RUN, [context, options])


def format_violations(violations: Sequence[Mapping[str, Any]]) -> str:
    """Render axe violations as a readable multi-line message for assertion failures."""
    if not violations:
        return "no accessibility violations"
    lines = [f"{len(violations)} accessibility violation(s):"]
    for v in violations:
        lines.append(f"- [{v.get('impact')}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v.get("nodes", []):
            lines.append(f"    at {', '.join(map(str, node.get('target', [])))}: {node.get('html', '')[:200]}")
            summary = (node.get("failureSummary") or "").replace("\n", "\n      ")
            if summary:
                lines.append(f"      {summary}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# QR codes and TOTP
# --------------------------------------------------------------------------------------------------


def decode_qr(png_bytes: bytes) -> str:
    """Decode the single QR code in an image (e.g. an element screenshot) and return its text.

    Raises ValueError when no QR code is found, so a missing or broken code fails loudly.
    """
    import zxingcpp
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(png_bytes)) as img:
        gray = img.convert("L")
    # A tight element screenshot may lack the quiet zone; retry with a white margin.
    for candidate in (gray, ImageOps.expand(gray, border=max(16, gray.width // 8), fill=255)):
        results = zxingcpp.read_barcodes(candidate, formats=zxingcpp.BarcodeFormat.QRCode)
        if results:
            text = results[0].text
            zbar = zbar_decode(candidate)
            if zbar is not None and zbar != text:
                raise ValueError(f"zxing-cpp read {text!r} but zbarimg read {zbar!r}")
            return text
    raise ValueError(f"no QR code found in {gray.width}x{gray.height} image")


def zbar_decode(image: object) -> str | None:
    """A second, independent decoder (Debian's zbarimg, as the contract names it); None when not installed."""
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        return None
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        image.save(f, format="PNG")  # type: ignore[attr-defined]
        f.flush()
        done = subprocess.run([zbarimg, "--raw", "-q", f.name], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise ValueError(f"zbarimg found no QR code (exit {done.returncode})")
    return done.stdout.rstrip("\n")


def totp_at(secret_base32: str, when: datetime, *, digits: int = 6, period: int = TOTP_PERIOD) -> str:
    """TOTP (SHA1) for ``when`` computed by Debian's ``oathtool``, an implementation independent of pyotp.

    The secret goes through stdin so it does not appear in the process list.
    """
    oathtool = shutil.which("oathtool")
    if oathtool is None:
        raise RuntimeError("oathtool not found: apt-get install oathtool")
    secret = "".join(secret_base32.split()).upper()
    stamp = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    proc = subprocess.run(
        [oathtool, "--totp", "-b", f"--digits={digits}", f"--time-step-size={period}s", f"--now={stamp}", "-"],
        input=secret + "\n",
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"oathtool failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def totp_now(secret_base32: str, offset_steps: int = 0, *, digits: int = 6, period: int = TOTP_PERIOD) -> str:
    """Current TOTP code, or the one ``offset_steps`` periods away (negative = past), via ``oathtool``."""
    when = datetime.now(UTC) + timedelta(seconds=offset_steps * period)
    return totp_at(secret_base32, when, digits=digits, period=period)


def seconds_left_in_step(period: int = TOTP_PERIOD) -> float:
    """Seconds until the current TOTP step ends; lets a test pick the next step instead of racing a boundary."""
    return period - (time.time() % period)


# --------------------------------------------------------------------------------------------------
# CSP console collection
# --------------------------------------------------------------------------------------------------


def is_csp_violation(text: str) -> bool:
    """True when a console / page-error text reports a Content Security Policy violation."""
    return any(marker in text for marker in CSP_MARKERS)


@dataclass
class CspCollector:
    """Collects CSP violation messages reported by one page (console errors and uncaught EvalErrors).

    htmx reports a blocked ``hx-on``/``js:`` evaluation through ``console.error`` and an ``htmx:error``
    event; inline scripts/styles blocked by the policy surface as console errors from Chromium itself.
    """

    messages: list[str] = field(default_factory=list)

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning") and is_csp_violation(msg.text):
            self.messages.append(f"console.{msg.type}: {msg.text} @ {msg.location.get('url', '')}")

    def on_page_error(self, error: Error) -> None:
        text = f"{error.name}: {error.message}"
        if is_csp_violation(text):
            self.messages.append(f"pageerror: {text}")

    def attach(self, page: Page) -> CspCollector:
        page.on("console", self.on_console)
        page.on("pageerror", self.on_page_error)
        return self


# --------------------------------------------------------------------------------------------------
# Subprocess server management
# --------------------------------------------------------------------------------------------------


def wait_for_http_ok(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers 200, bounded by ``timeout``; fail fast if ``proc`` exits meanwhile.

    The pause between attempts is ``proc.wait(0.05)`` so an early crash is noticed immediately.
    """
    deadline = time.monotonic() + timeout
    last_error = "no attempt made"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
                last_error = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last_error = f"HTTP {exc.code}"
            exc.close()
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last_error = repr(exc)
        if proc is None:
            time.sleep(0.05)
            continue
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass
    raise TimeoutError(f"{url} did not answer 200 within {timeout}s (last: {last_error})")


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """Terminate ``proc`` (SIGTERM, then SIGKILL after ``grace`` seconds) and reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)


def tail(path: Path, max_chars: int = 20_000, since: int = 0) -> str:
    """Last ``max_chars`` bytes of a log file after offset ``since`` (empty string if missing)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return ""
    with path.open("rb") as fh:
        fh.seek(max(since, size - max_chars))
        return fh.read().decode("utf-8", errors="replace")


REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class LiveServer:
    """A running ``python -m web serve`` subprocess plus what a test needs to talk to it."""

    url: str
    env: dict[str, str]
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen[bytes]
    cwd: Path = REPO_ROOT
    module: str = "web"

    def cli(self, *args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``python -m web ARGS`` with the server's environment; raise with its output on failure."""
        proc = subprocess.run(
            [sys.executable, "-m", self.module, *args],
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"`python -m {self.module} {' '.join(args)}` exited {proc.returncode}\n"
                f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
            )
        return proc

    def create_user(self, email: str, role: str, password: str) -> None:
        """Create a user through the app's CLI (password on stdin, so it never shows in argv)."""
        self.cli("user", "create", "--email", email, "--role", role, "--password-stdin", stdin=password + "\n")

    def log_tail(self, since: int = 0, max_chars: int = 20_000) -> str:
        """Server output (stdout+stderr) written after byte offset ``since``, capped to the last ``max_chars``."""
        return tail(self.log_path, max_chars=max_chars, since=since)

    def log_size(self) -> int:
        """Current size of the server log, to show only the lines a given test produced."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def stop(self) -> None:
        """Terminate the server and reap it."""
        stop_process(self.proc)


def server_env(
    data_dir: Path,
    port: int,
    base: Mapping[str, str] | None = None,
    *,
    database_url: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for the app: the documented variables on top of the caller's (PATH, etc.).

    DATABASE_URL is ``database_url`` when given, else E2E_DATABASE_URL when set (e.g. a PostgreSQL run), else a
    SQLite file in DATA_DIR. ``overrides`` (e.g. ``{"REAUTH_WINDOW": "2"}``) win over everything.
    """
    env = dict(os.environ if base is None else base)
    env.update(
        DATA_DIR=str(data_dir),
        DATABASE_URL=database_url or env.get("E2E_DATABASE_URL") or f"sqlite:///{data_dir}/e2e.db",
        SECRET_KEY=secrets.token_urlsafe(32),
        APP_NAME=env.get("E2E_APP_NAME", "Chat360"),
        REAUTH_WINDOW=env.get("E2E_REAUTH_WINDOW", "300"),
        HOST="127.0.0.1",
        PORT=str(port),
        PUBLIC_URL=f"http://localhost:{port}",  # WebAuthn needs a host name, never an IP (bind stays 127.0.0.1)
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides or {})
    return env


def is_psycopg_url(url: str | None) -> bool:
    """True for the SQLAlchemy URLs the app runs on PostgreSQL with (``postgresql+psycopg://...``)."""
    return bool(url) and url.startswith("postgresql+psycopg://")


@contextmanager
def throwaway_database(url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the server ``url`` names; yields its URL and drops it afterwards.

    The live server must never share tables with the HTTP tests, which truncate the database in ``url``
    between tests. ``CREATE``/``DROP DATABASE`` cannot run in a transaction, hence autocommit. ``FORCE``
    ends connections a crashed server may have left behind.
    """
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin_dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"e2e_{secrets.token_hex(6)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def start_live_server(
    data_dir: Path,
    *,
    cwd: Path = REPO_ROOT,
    module: str = "web",
    startup_timeout: float = 60.0,
    database_url: str | None = None,
    env_overrides: Mapping[str, str] | None = None,
) -> LiveServer:
    """Start ``python -m MODULE serve`` on a free port and return once GET /healthz answers 200.

    ``database_url`` and ``env_overrides`` go to :func:`server_env`. Output goes to a file rather than a pipe:
    an unread pipe fills up and blocks a chatty server.
    """
    port = free_port()
    env = server_env(data_dir, port, database_url=database_url, overrides=env_overrides)
    log_path = data_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "serve"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(env["PUBLIC_URL"], env, data_dir, log_path, proc, cwd, module)
    try:
        wait_for_http_ok(f"{server.url}/healthz", proc, timeout=startup_timeout)
    except Exception as exc:
        server.stop()
        raise RuntimeError(f"{exc}\n--- server output ---\n{server.log_tail()}") from None
    except BaseException:
        server.stop()
        raise
    return server

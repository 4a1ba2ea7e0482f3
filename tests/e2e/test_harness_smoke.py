"""Proves the e2e harness itself works, without the app: axe, QR decoding, oathtool TOTP, CSP collection,
the JS/no-JS page fixtures and the live-server start/stop machinery (against a stub ``python -m`` module).

Pages come from a throwaway ``http.server`` thread that sends the same kind of strict CSP the app will.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import segno
from PIL import Image
from playwright.sync_api import Browser, Page

from .support import (
    CspCollector,
    axe_violations,
    decode_qr,
    format_violations,
    free_port,
    is_csp_violation,
    is_psycopg_url,
    start_live_server,
    throwaway_database,
    totp_at,
    totp_now,
    wait_for_http_ok,
)

CSP = "default-src 'self'; script-src 'self'"
RFC6238_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
OTPAUTH = "otpauth://totp/Chat360:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Chat360"


def _doc(body: str, title: str = "Harness") -> bytes:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<script src="/mark-js.js"></script></head><body><main><h1>{title}</h1>{body}</main></body></html>'
    ).encode()


def _qr_png() -> bytes:
    buf = io.BytesIO()
    segno.make(OTPAUTH, error="m").save(buf, kind="png", scale=5, border=4)
    return buf.getvalue()


PAGES: dict[str, tuple[str, bytes]] = {
    "/good": ("text/html", _doc('<p>Fine.</p><img src="/qr.png" alt="QR code" width="10" height="10">')),
    "/img-no-alt": ("text/html", _doc('<img src="/qr.png" width="10" height="10">')),
    "/inline-script": ("text/html", _doc("<script>document.title = 'ran';</script><p style='color:red'>x</p>")),
    "/qr": ("text/html", _doc('<img id="qr" src="/qr.png" alt="Scan this QR code">')),
    "/qr.png": ("image/png", _qr_png()),
    "/mark-js.js": ("text/javascript", b"document.documentElement.dataset.js = 'on';"),
}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ctype, body = PAGES.get(self.path, ("text/plain", b"not found"))
        self.send_response(200 if self.path in PAGES else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """Base URL of a static site sent with ``Content-Security-Policy: default-src 'self'; script-src 'self'``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- pure helpers --------------------------------------------------------------------------------


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.parametrize(
    ("unix_time", "expected"),
    [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"), (20000000000, "65353130")],
)
def test_oathtool_matches_rfc6238_sha1_vectors(unix_time: int, expected: str) -> None:
    assert totp_at(RFC6238_SECRET, datetime.fromtimestamp(unix_time, UTC), digits=8) == expected


def test_totp_now_uses_current_step_and_offsets() -> None:
    before = datetime.now(UTC).timestamp()
    codes = {step: totp_now(RFC6238_SECRET, step) for step in (-1, 0, 1)}
    after = datetime.now(UTC).timestamp()
    for step, code in codes.items():
        # Bracket the call: a step boundary may pass between `before` and `after`, never sleep to avoid it.
        candidates = {totp_at(RFC6238_SECRET, datetime.fromtimestamp(t + 30 * step, UTC)) for t in (before, after)}
        assert code in candidates
        assert len(code) == 6 and code.isdigit()


def test_totp_accepts_lowercase_and_spaced_secrets() -> None:
    when = datetime.fromtimestamp(59, UTC)
    assert totp_at("gezd gnbv gy3t qojq gezd gnbv gy3t qojq", when, digits=8) == "94287082"


def test_decode_qr_raises_when_there_is_no_code() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (120, 120), "white").save(buf, format="PNG")
    with pytest.raises(ValueError, match="no QR code"):
        decode_qr(buf.getvalue())


def test_csp_marker_matching() -> None:
    assert is_csp_violation("Executing inline script violates the following Content Security Policy directive ...")
    assert is_csp_violation("Refused to apply inline style because it violates ...")
    assert not is_csp_violation("Failed to load resource: the server responded with a status of 404")


# -- browser helpers ------------------------------------------------------------------------------


@pytest.mark.e2e
def test_axe_clean_page_has_no_violations_and_is_injected_outside_csp(page: Page, site: str) -> None:
    page.goto(f"{site}/good")
    violations = axe_violations(page)
    assert violations == [], format_violations(violations)
    # axe ran although script-src 'self' forbids inline/eval'd code: no <script> was added, nothing was reported.
    assert page.evaluate("() => [window.axe.version, document.scripts.length]") == ["4.14.1", 1]
    assert page.csp_violations == []  # type: ignore[attr-defined]


@pytest.mark.e2e
def test_axe_reports_image_without_alt(page: Page, site: str) -> None:
    page.goto(f"{site}/img-no-alt")
    violations = axe_violations(page)
    assert [v["id"] for v in violations] == ["image-alt"], format_violations(violations)
    text = format_violations(violations)
    assert "image-alt" in text and "img" in text
    assert axe_violations(page, disabled_rules=["image-alt"]) == []


@pytest.mark.e2e
def test_decode_qr_from_element_screenshot(page: Page, site: str) -> None:
    page.goto(f"{site}/qr")
    qr = page.locator("#qr")
    qr.evaluate("img => img.decode()")  # wait for the image bytes, without a sleep
    assert decode_qr(qr.screenshot()) == OTPAUTH


@pytest.mark.e2e
def test_csp_collector_sees_blocked_inline_script_and_style(browser: Browser, site: str) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        collector = CspCollector().attach(page)
        with page.expect_console_message(lambda m: is_csp_violation(m.text)):
            page.goto(f"{site}/inline-script")
        assert page.title() == "Harness", "the inline script must have been blocked"
        # The console events for the script and the style attribute arrive in document order.
        page.locator("p").first.evaluate("p => getComputedStyle(p).color")
        joined = "\n".join(collector.messages)
        assert "script" in joined and "Content Security Policy" in joined, joined
        assert any("style" in m for m in collector.messages), joined
    finally:
        context.close()


@pytest.mark.e2e
def test_page_fixture_runs_same_origin_scripts(page: Page, site: str) -> None:
    page.goto(f"{site}/good")
    assert page.evaluate("() => document.documentElement.dataset.js") == "on"
    assert page.csp_violations == []  # type: ignore[attr-defined]


@pytest.mark.e2e
def test_page_nojs_fixture_runs_no_scripts(page_nojs: Page, site: str) -> None:
    page_nojs.goto(f"{site}/good")
    assert page_nojs.locator("html").get_attribute("data-js") is None
    assert page_nojs.get_by_role("heading", name="Harness").is_visible()


# -- live server machinery (stub app, since the real one is started the same way) ----------------------

STUB_MAIN = textwrap.dedent(
    '''
    """Stand-in for `python -m web`: `serve` (GET /healthz, GET /env) and `user create`."""
    import http.server, json, os, sys

    def serve():
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/healthz":
                    body = b"ok"
                elif self.path == "/env":
                    keys = ("DATA_DIR", "DATABASE_URL", "SECRET_KEY", "APP_NAME", "REAUTH_WINDOW", "HOST", "PORT")
                    body = json.dumps({k: os.environ.get(k) for k in keys}).encode()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        print("stub serving on", os.environ["PORT"], file=sys.stderr, flush=True)
        http.server.ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), H).serve_forever()

    def user_create(args):
        opts = dict(zip(args[0::2], args[1::2]))
        if args[-1] != "--password-stdin" or opts.get("--role") not in ("admin", "agent"):
            sys.exit("bad arguments: " + " ".join(args))
        password = sys.stdin.readline().rstrip("\\n")
        with open(os.path.join(os.environ["DATA_DIR"], "users.jsonl"), "a") as fh:
            fh.write(json.dumps({"email": opts["--email"], "role": opts["--role"], "password": password}) + "\\n")

    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:3] == ["user", "create"]:
        user_create(sys.argv[3:])
    else:
        sys.exit("unknown command")
    '''
)


@pytest.fixture
def stub_app(tmp_path: Path) -> Path:
    """A directory holding a ``stubweb`` package that behaves like the app's CLI contract."""
    pkg = tmp_path / "stub" / "stubweb"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(STUB_MAIN)
    return pkg.parent


def test_live_server_machinery_with_stub_app(stub_app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("E2E_DATABASE_URL", raising=False)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    server = start_live_server(data_dir, cwd=stub_app, module="stubweb", startup_timeout=20)
    try:
        with urllib.request.urlopen(f"{server.url}/env", timeout=5) as resp:
            env = json.load(resp)
        assert env["DATA_DIR"] == str(data_dir)
        assert env["DATABASE_URL"] == f"sqlite:///{data_dir}/e2e.db"
        assert env["HOST"] == "127.0.0.1" and env["PORT"] == server.url.rsplit(":", 1)[1]
        assert env["SECRET_KEY"] and env["APP_NAME"] and env["REAUTH_WINDOW"]

        server.create_user("a@example.com", "agent", "correct horse battery staple")
        (line,) = (data_dir / "users.jsonl").read_text().splitlines()
        assert json.loads(line) == {
            "email": "a@example.com",
            "role": "agent",
            "password": "correct horse battery staple",
        }
        with pytest.raises(RuntimeError, match="bad arguments"):
            server.create_user("b@example.com", "root", "pw")
        assert "stub serving on" in server.log_tail()
    finally:
        server.stop()
    assert server.proc.returncode is not None


def test_live_server_database_url_override(stub_app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2E_DATABASE_URL", "postgresql://e2e@localhost/e2e")
    server = start_live_server(tmp_path, cwd=stub_app, module="stubweb", startup_timeout=20)
    try:
        assert server.env["DATABASE_URL"] == "postgresql://e2e@localhost/e2e"
    finally:
        server.stop()


def test_live_server_env_overrides_and_database_url(
    stub_app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2E_DATABASE_URL", "postgresql://e2e@localhost/e2e")
    server = start_live_server(
        tmp_path,
        cwd=stub_app,
        module="stubweb",
        startup_timeout=20,
        database_url="sqlite:////elsewhere.db",
        env_overrides={"REAUTH_WINDOW": "2"},
    )
    try:
        with urllib.request.urlopen(f"{server.url}/env", timeout=5) as resp:
            env = json.load(resp)
        assert env["REAUTH_WINDOW"] == "2"
        assert env["DATABASE_URL"] == "sqlite:////elsewhere.db"
    finally:
        server.stop()


@pytest.mark.skipif(
    not is_psycopg_url(os.environ.get("E2E_DATABASE_URL")), reason="needs E2E_DATABASE_URL=postgresql+psycopg://..."
)
def test_throwaway_database_is_created_empty_and_dropped() -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    base = os.environ["E2E_DATABASE_URL"]
    admin_dsn = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)

    def exists(name: str) -> bool:
        with psycopg.connect(admin_dsn) as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    with throwaway_database(base) as url:
        parsed = make_url(url)
        assert parsed.drivername == "postgresql+psycopg"
        assert parsed.database != make_url(base).database and parsed.database.startswith("e2e_")
        assert exists(parsed.database)
        # Left open across the drop, like a server that did not shut down cleanly: FORCE ends it.
        straggler = psycopg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
        tables = straggler.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
    straggler.close()
    assert not exists(parsed.database)


def test_live_server_start_failure_is_reported_quickly(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="No module named") as excinfo:
        start_live_server(tmp_path, cwd=tmp_path, module="no_such_app_module", startup_timeout=20)
    assert "exited with code 1" in str(excinfo.value)


def test_wait_for_http_ok_times_out_when_nothing_listens() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        with pytest.raises(TimeoutError, match="did not answer"):
            wait_for_http_ok(f"http://127.0.0.1:{port}/healthz", proc, timeout=0.3)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)

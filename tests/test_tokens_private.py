"""One-time tokens never reach logs, data files are private (requirement 50); absolute URLs come from
PUBLIC_URL, never from the Host header (requirement 51)."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.conftest import Auth, Member, make_settings
from tests.support_processes import httpx, start_server, stop, wait_ready
from web.cli import setup_message
from web.redact import redact

EVIL = {"Host": "evil.example"}
HX = {"HX-Request": "true", "HX-Request-Type": "partial"}


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def _umask(pid: int) -> str:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^Umask:\s+(\d+)$", status, re.MULTILINE)
    assert match, status
    return match.group(1)


def test_serve_keeps_tokens_out_of_the_access_log_and_files_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    log = tmp_path / "server.log"
    server = start_server({"DATA_DIR": str(data), "PUBLIC_URL": "https://chat.example.com"}, log, quiet=False)
    try:
        wait_ready([server])
        printed = re.search(r"https://chat\.example\.com/setup/([A-Za-z0-9_-]+)", log.read_text())
        assert printed, server.output()
        token = printed.group(1)
        assert httpx.get(f"{server.url}/setup/{token}", timeout=5).status_code == 200
        assert httpx.get(f"{server.url}/set-password/secret-token-123?x=1", timeout=5).status_code in (200, 404)
        assert httpx.get(f"{server.url}/login?next=/set-password/other-token-456", timeout=5).status_code == 200
        assert _umask(server.process.pid) == "0077"
        assert _mode(data) == "0o700"
        for name in ("chat360.db", "chat360.db-wal", "chat360.db-shm", "secret_key", "mfa_encryption_keys"):
            assert _mode(data / name) == "0o600", name
    finally:
        stop([server])
    text = log.read_text()
    assert text.count(token) == 1  # the line that printed the link, nothing after
    assert "secret-token-123" not in text and "other-token-456" not in text
    assert '"GET /setup/[redacted] HTTP/1.1" 200' in text  # the access log still shows the request
    assert "/set-password/[redacted]?x=1" in text


def test_redact_keeps_the_rest_of_the_line() -> None:
    assert (
        redact("GET /setup/abc?next=/set-password/xyz&a=1") == "GET /setup/[redacted]?next=/set-password/[redacted]&a=1"
    )
    assert redact("/settings/password") == "/settings/password"


def test_a_slash_path_never_redirects_to_the_host_header(client: TestClient) -> None:
    for path in ("/settings/", "/team/", "/login/", "/activity/"):
        response = client.get(path, headers=EVIL)
        assert "evil.example" not in response.headers.get("location", "") and "evil.example" not in response.text


def test_add_member_link_comes_from_public_url(auth: Auth, admin: Member) -> None:
    auth.login(admin)
    response = auth.post(
        "/team/members", {"email": "new@example.com", "role": "agent"}, page="/team", headers=HX | EVIL
    )
    assert response.status_code == 200
    assert "evil.example" not in response.text
    assert re.search(r"<code>https://testserver/set-password/[^<]+</code>", response.text)


def test_setup_link_printed_with_public_url(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, public_url="https://chat.example.com/", port=9000)
    assert setup_message(settings, "tok").endswith("https://chat.example.com/setup/tok")
    assert make_settings(tmp_path, public_url="", port=9000).public_url == "http://localhost:9000"


@pytest.mark.parametrize(
    "value",
    ["ftp://chat.example.com", "chat.example.com", "https://", "https://chat.example.com/app", "https://x.com/?a=1",
     "https://u:p@chat.example.com", "https://chat.example.com:port", "javascript:alert(1)"],
)  # fmt: skip
def test_public_url_is_validated(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValueError, match="PUBLIC_URL"):
        make_settings(tmp_path, public_url=value)

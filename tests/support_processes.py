"""Real app processes for the multi-process tests: a throwaway PostgreSQL database, `python -m web serve`
started twice on one data directory, readiness by polling /healthz, and a small HTTP browser per session."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

try:
    import httpx
except ImportError:  # this project installs httpx2, the maintained fork with the same API
    import httpx2 as httpx  # type: ignore[no-redef]

import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server `server_url` points at; dropped afterwards."""
    admin = make_url(server_url).set(drivername="postgresql", database="postgres")
    name = "mp_" + secrets.token_hex(6)
    conninfo = admin.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def start_server(env: dict[str, str], log: Path, args: tuple[str, ...] = ()) -> Server:
    """`python -m web serve` (migrate, then uvicorn) on a free port, with `env` on top of ours and `args`
    (such as `--workers 2`) after the command."""
    port = free_port()
    full = {k: v for k, v in os.environ.items() if k not in ("MFA_ENCRYPTION_KEYS", "SECRET_KEY", "DATABASE_URL")}
    full |= env | {"HOST": "127.0.0.1", "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "web", "serve", "--quiet", *args],
            cwd=ROOT,
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server(port, process, log)


def wait_ready(servers: list[Server], timeout: float = 30.0) -> None:
    """Poll /healthz until every server answers; fail early with its log if one exits."""
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        server = pending[0]
        if server.process.poll() is not None:
            raise RuntimeError(f"server on port {server.port} exited:\n{server.output()}")
        try:
            if httpx.get(server.url + "/healthz", timeout=1.0).status_code == 200:
                pending.pop(0)
                continue
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"server on port {server.port} not ready after {timeout} s:\n{server.output()}")
        time.sleep(0.05)  # polling interval, not a wait for something to happen


def stop(servers: list[Server]) -> None:
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)


class Browser:
    """One cookie jar talking to one server, the way a member's browser would. Each has its own client
    address (X-Forwarded-For, which `serve` trusts from 127.0.0.1 as from a local proxy), so the per-address
    throttle of one test's many sessions doesn't spill into the next."""

    _addresses = iter(range(1, 1 << 24))

    def __init__(self, server: Server) -> None:
        self.server = server
        n = next(self._addresses)
        address = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        self.http = httpx.Client(
            base_url=server.url, follow_redirects=False, timeout=30.0, headers={"X-Forwarded-For": address}
        )

    def close(self) -> None:
        self.http.close()

    def token(self, path: str) -> str:
        match = _CSRF.search(self.http.get(path).text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def password(self, email: str, password: str, next_path: str = "/settings") -> None:
        data = {"csrf_token": self.token("/login"), "email": email, "password": password, "next": next_path}
        response = self.http.post("/login", data=data)
        assert response.status_code == 303 and response.headers["location"].startswith("/login/verify"), response.text
        self.verify_token = self.token("/login/verify")

    def verify(self, code: str, *, backup: bool = False, next_path: str = "/settings") -> httpx.Response:
        data = {"csrf_token": self.verify_token, "next": next_path}
        data |= {"method": "backup", "backup_code": code} if backup else {"code": code}
        return self.http.post("/login/verify", data=data)

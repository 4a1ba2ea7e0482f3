"""Fixtures: an app per test on its own database (in-memory SQLite, or the PostgreSQL named by
TEST_DATABASE_URL, emptied between tests), a TestClient on https:// so Secure cookies travel, and members."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import Engine, text
from sqlmodel import SQLModel, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from db import migrate
from db.crypto import new_key
from db.engine import make_engine, open_session
from db.events import OPERATOR
from db.models import AuthSession, User
from db.users import create_user
from web.app import (
    create_app,
    hasher_for,  # noqa: I001
)
from web.config import Settings
from web.cookies import SECURE_NAME

PASSWORD = "correct horse battery staple"
PG_URL = os.environ.get("TEST_DATABASE_URL")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine | None]:
    """One PostgreSQL schema per run, built by the real migrations."""
    if not PG_URL:
        yield None
        return
    engine = make_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(pg_engine: Engine | None) -> Iterator[Engine]:
    if pg_engine is not None:
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        with pg_engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        yield pg_engine
        return
    engine = make_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


def public_resolver(host: str, port: int) -> list[str]:
    """There is no DNS here: every webhook host name resolves to one public address (example.com's)."""
    return ["93.184.215.14"]


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "database_url": PG_URL or "sqlite://",
        "secret_key": "test-secret-key-" + "x" * 32,
        "mfa_keys": (new_key(),),
        # Cheap hashing keeps the suite fast; the production cost is measured in bench/.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 1024,
        # The outbox loop would share the in-memory database's single connection with the request being
        # tested; tests that want mail delivered run it on a file database (or call deliver_now).
        "outbox_interval": 3600.0,
        "resolver": public_resolver,
        "public_url": "https://testserver",  # the TestClient's origin, so links in pages can be followed
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(tmp_path: Path, clock: Clock) -> Settings:
    return make_settings(tmp_path, totp_clock=clock)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Starlette:
    return create_app(settings, engine)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def use_cookie(client: TestClient, value: str) -> None:
    """Replay a session cookie captured earlier, as an attacker holding a copy would."""
    client.cookies.clear()
    client.cookies.set(SECURE_NAME, value, domain="testserver.local", path="/")


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


class Clock:
    """The time TOTP codes are checked against. Tests step it a window (30 s) at a time instead of sleeping;
    the codes themselves come from pyotp, independent of the app's verification path."""

    def __init__(self) -> None:
        self.now = float(int(time.time()) // 30 * 30 + 10)

    def __call__(self) -> float:
        return self.now

    def advance(self, steps: int = 1) -> None:
        self.now += 30 * steps


@dataclass
class Member:
    user: User
    clock: Clock
    password: str = PASSWORD
    secret: str | None = None
    codes: list[str] | None = None

    @property
    def email(self) -> str:
        return self.user.email

    def code(self, offset: int = 0) -> str:
        """The authenticator's code `offset` steps from now; each call after the first moves time on, as a
        second code from a phone only comes in the next window."""
        assert self.secret
        return pyotp.TOTP(self.secret).at(int(self.clock()) + 30 * offset)

    def fresh_code(self) -> str:
        self.clock.advance()
        return self.code()


class Auth:
    """Drives the sign-in and MFA flows over HTTP, the way a browser would (flaskr's AuthActions)."""

    def __init__(self, client: TestClient, engine: Engine, settings: Settings) -> None:
        self.client, self.engine, self.settings = client, engine, settings

    def create(self, email: str = "agent@example.com", role: str = "agent", password: str = PASSWORD) -> Member:
        with open_session(self.engine) as session:
            user = create_user(
                session, email=email, role=role, password=password, hasher=hasher_for(self.settings), actor=OPERATOR
            )
        return Member(user, self.settings.totp_clock, password)  # type: ignore[arg-type]

    def token(self, path: str = "/login") -> str:
        return csrf_of(self.client.get(path).text)

    def post(self, path: str, data: dict[str, str] | None = None, *, page: str | None = None, **kw: object):  # noqa: ANN201
        """POST with the CSRF token of the page a member would have been on."""
        token = self.token(page or path)
        return self.client.post(path, data={"csrf_token": token, **(data or {})}, **kw)  # type: ignore[arg-type]

    def password(self, member: Member, *, next_path: str = "/"):  # noqa: ANN201
        return self.post("/login", {"email": member.email, "password": member.password, "next": next_path})

    def login(self, member: Member) -> None:
        response = self.password(member)
        assert response.status_code == 303, response.text
        if response.headers["location"].startswith("/login/verify"):
            response = self.post("/login/verify", {"code": member.fresh_code()}, page="/login/verify")
            assert response.status_code == 303, response.text

    def enable_totp(self, member: Member) -> Member:
        """Switch Enable on, read the setup key, confirm with a real code; keeps secret and backup codes."""
        response = self.post("/settings/mfa/totp/enable", page="/settings/mfa/totp", headers={"HX-Request": "true"})
        assert response.status_code == 200, response.text
        member.secret = setup_key(response.text)
        response = self.post("/settings/mfa/totp/confirm", {"code": member.fresh_code()}, page="/settings/mfa/totp")
        assert response.status_code == 200, response.text
        member.codes = backup_codes(response.text)
        return member

    def age_sessions(self, seconds: int) -> None:
        """Move every session's last identity check `seconds` into the past (instead of sleeping)."""
        with open_session(self.engine) as session:
            for row in session.exec(select(AuthSession)):
                row.verified_at -= timedelta(seconds=seconds)
                session.add(row)
            session.commit()

    def logout(self) -> None:
        self.post("/logout", page="/settings")


def setup_key(html: str) -> str:
    """The setup key as shown: its groups of four are <span>s with no space between them."""
    match = re.search(r'<code id="setup-key-value"[^>]*>((?:<span>[A-Z2-7]{1,4}</span>)+)</code>', html)
    assert match, "no setup key shown"
    return re.sub(r"</?span>", "", match.group(1))


def backup_codes(html: str) -> list[str]:
    return re.findall(r"<li><code>([A-Z0-9-]{19})</code></li>", html)


@pytest.fixture
def auth(client: TestClient, engine: Engine, settings: Settings) -> Auth:
    return Auth(client, engine, settings)


@pytest.fixture
def member(auth: Auth) -> Member:
    return auth.create()


@pytest.fixture
def admin(auth: Auth) -> Member:
    return auth.create("admin@example.com", "admin")


@pytest.fixture
def member_with_totp(auth: Auth, member: Member) -> Member:
    auth.login(member)
    auth.enable_totp(member)
    auth.logout()
    return member

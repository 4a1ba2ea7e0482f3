"""Key rotation under a live 2-worker server (security requirement 43, issue point 2): `python -m web keys
rotate`, a real CLI process, runs while members sign in with TOTP; no valid code is refused, no restart is
needed, a member enrolled after the rotation still signs in after a restart, and a webhook secret stays
readable. On a SQLite file always, and on a throwaway PostgreSQL database when TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from db import migrate, sensitive
from db.crypto import Keyring
from db.engine import make_engine, open_session
from db.events import OPERATOR
from db.factors import totp
from db.keyfile import read_keys
from db.keyholders import holders
from db.models import TotpDevice, User, Webhook
from db.users import create_user
from tests.conftest import PASSWORD, PG_URL, setup_key
from tests.support_processes import ROOT, Browser, Server, start_server, stop, throwaway_database, wait_ready
from tests.test_multiprocess import ENV, Account, enrol_accounts
from web.app import hasher_for, keyring_for
from web.config import keys_file, load_settings

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Codes:
    """Hands out each account's next unused time step (the current one or the next), as an authenticator
    app would over time: a step accepted once is never offered again (the server refuses replays)."""

    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    def next(self, account: Account) -> str | None:
        now = totp.step_at(time.time())
        step = max(self.last.get(account.email, now - 2) + 1, now)
        if step > now + 1:
            return None
        self.last[account.email] = step
        return pyotp.TOTP(account.secret).generate_otp(step)

    def any(self, accounts: list[Account]) -> tuple[Account, str] | None:
        """The first account with a code left in this time window."""
        return next(((a, c) for a in accounts if (c := self.next(a))), None)


def sign_in(server: Server, account: Account, code: str) -> int:
    browser = Browser(server)
    try:
        browser.password(account.email, PASSWORD)
        return browser.verify(code).status_code
    finally:
        browser.close()


def enrol_over_http(server: Server, engine: Engine, email: str, codes: Codes) -> Account:
    """A new member turns on TOTP through the running server: the secret is sealed by whichever key the
    worker holds at that moment."""
    with open_session(engine) as session:
        create_user(
            session,
            email=email,
            role="agent",
            password=PASSWORD,
            hasher=hasher_for(load_settings(ENV)),
            actor=OPERATOR,
        )
    browser = Browser(server)
    try:
        data = {"csrf_token": browser.token("/login"), "email": email, "password": PASSWORD, "next": "/settings"}
        assert browser.http.post("/login", data=data).status_code == 303
        page = browser.http.post("/settings/mfa/totp/enable", data={"csrf_token": browser.token("/settings")})
        assert page.status_code == 303, page.text
        account = Account(email, setup_key(browser.http.get("/settings/mfa/totp").text), [])
        token = browser.token("/settings/mfa/totp")
        confirmed = browser.http.post(
            "/settings/mfa/totp/confirm", data={"csrf_token": token, "code": codes.next(account)}
        )
        assert confirmed.status_code in (200, 303), confirmed.text
    finally:
        browser.close()
    with open_session(engine) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        assert session.exec(select(TotpDevice).where(TotpDevice.user_id == user.id)).first() is not None
    return account


def rotate_cli(env: dict[str, str]) -> subprocess.Popen[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("MFA_ENCRYPTION_KEYS", "SECRET_KEY", "DATABASE_URL")}
    return subprocess.Popen(
        [sys.executable, "-m", "web", "keys", "rotate"],
        cwd=ROOT,
        env=full | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_workers(engine: Engine, count: int) -> None:
    """Both workers have started and reported their keys, so the rotation has someone to wait for."""
    deadline = time.monotonic() + 30
    while sum(h.live for h in _holders(engine)) < count:
        assert time.monotonic() < deadline, _holders(engine)
        time.sleep(0.1)


def _holders(engine: Engine) -> list[object]:
    with open_session(engine) as session:
        return holders(session)  # type: ignore[return-value]


def webhook_secret(engine: Engine, keys: tuple[str, ...]) -> str:
    with open_session(engine) as session:
        return Keyring(keys).decrypt(session.exec(select(Webhook)).one().secret_encrypted)


@pytest.fixture(params=["sqlite-file", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict[str, str], Engine]]:
    if request.param == "postgresql" and not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL pass needs a server to create a database on")
    with ExitStack() as stack:
        if request.param == "postgresql":
            url = stack.enter_context(throwaway_database(PG_URL or ""))
        else:
            url = f"sqlite:///{tmp_path / 'rotating.db'}"
        engine = make_engine(url)
        stack.callback(engine.dispose)
        migrate.upgrade(engine)
        yield ENV | {"DATA_DIR": str(tmp_path), "DATABASE_URL": url}, engine


def test_rotation_under_a_live_two_worker_server(database: tuple[dict[str, str], Engine], tmp_path: Path) -> None:
    env, engine = database
    accounts = list(enrol_accounts(engine, env, [f"m{i}" for i in range(16)]).values())
    with open_session(engine) as session:
        _, hook_secret = sensitive.add_webhook(
            session, url="https://93.184.215.14/x", keyring=keyring_for(load_settings(env)), actor=OPERATOR
        )
    old = read_keys(keys_file(tmp_path))
    codes, refused, phases = Codes(), [], []
    server = start_server(env, tmp_path / "server.log", "--workers", "2")
    try:
        wait_ready([server], timeout=90)  # two workers on a busy shared machine
        wait_for_workers(engine, 2)
        rotation = rotate_cli(env)
        while rotation.poll() is None:  # members keep signing in while each phase runs
            if found := codes.any(accounts[:12]):
                phases.append(read_keys(keys_file(tmp_path)))
                if (status := sign_in(server, *found)) != 303:
                    refused.append((found[0].email, status))
            time.sleep(0.2)  # pacing, so the sign-ins spread over every phase
        out, err = rotation.communicate()
        assert rotation.returncode == 0, err
        assert not refused, (refused, server.output())
        assert any(len(p) == 2 for p in phases), f"no sign-in while both keys were in use: {len(phases)} sign-ins"
        new = read_keys(keys_file(tmp_path))
        assert len(new) == 1 and new[0] not in old, out
        assert webhook_secret(engine, new) == hook_secret

        for account in accounts[12:]:  # after the rotation, same processes, no restart
            assert sign_in(server, account, codes.next(account) or "") == 303, server.output()
        enrolled = enrol_over_http(server, engine, "after@example.com", codes)
    finally:
        stop([server])
    server = start_server(env, tmp_path / "restarted.log", "--workers", "2")
    try:
        wait_ready([server], timeout=90)  # two workers on a busy shared machine
        code = codes.next(enrolled)
        assert code is not None
        assert sign_in(server, enrolled, code) == 303, server.output()
        assert webhook_secret(engine, read_keys(keys_file(tmp_path))) == hook_secret
    finally:
        stop([server])

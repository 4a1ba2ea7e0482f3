"""Several app processes on one database (security requirements 9, 10, 13, 17 and issue #4 item 8): two real
`python -m web serve` processes share a data directory (so SECRET_KEY and the encryption keys) and a database;
a code accepted by one is refused by the other, a race of one code over many sessions split across both has
one winner, and failures on both count in one throttle. Runs on a SQLite file always, and on a throwaway
PostgreSQL database when TEST_DATABASE_URL names a server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import pyotp
import pytest
from sqlalchemy import Engine
from sqlmodel import select

from db import mfa, migrate, throttle
from db.engine import make_engine, open_session
from db.events import OPERATOR
from db.factors import totp
from db.models import RecoveryCode, Throttle, User
from db.users import create_user
from tests.conftest import PASSWORD, PG_URL
from tests.support_processes import Browser, Server, start_server, stop, throwaway_database, wait_ready
from web.app import hasher_for, keyring_for  # noqa: I001
from web.config import load_settings

ENV = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024"}


@dataclass
class Account:
    email: str
    secret: str
    codes: list[str]

    def code(self) -> str:
        return pyotp.TOTP(self.secret).now()

    def wrong(self) -> str:
        window = {pyotp.TOTP(self.secret).at(time.time() + 30 * k) for k in (-1, 0, 1)}
        return next(c for c in ("000000", "111111", "222222", "333333") if c not in window)


@dataclass
class Deployment:
    servers: list[Server]
    engine: Engine
    accounts: dict[str, Account]


def enrol_accounts(engine: Engine, env: dict[str, str], names: list[str]) -> dict[str, Account]:
    """Members with an authenticator, made through the services with the keys the servers will load. The
    enrolment code is two steps old, so every code of the current window is still unused."""
    settings = load_settings(env)
    accounts = {}
    with open_session(engine) as session:
        for name in names:
            user = create_user(
                session,
                email=f"{name}@example.com",
                role="agent",
                password=PASSWORD,
                hasher=hasher_for(settings),
                actor=OPERATOR,
            )
            sealed, secret = totp.begin_enrolment(keyring_for(settings), user_id=user.id or 0)
            at = time.time() - 60
            changed = mfa.confirm_totp(
                session,
                user=user,
                sealed=sealed,
                code=pyotp.TOTP(secret).at(int(at)),
                keyring=keyring_for(settings),
                ttl=600,
                actor=OPERATOR,
                at=at,
            )
            accounts[name] = Account(user.email, secret, changed.codes)
    return accounts


@pytest.fixture(scope="module", params=["sqlite-file", "postgresql"])
def deployment(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if request.param == "postgresql" and not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL pass needs a server to create a database on")
    data_dir = tmp_path_factory.mktemp("multiprocess")
    with ExitStack() as stack:
        if request.param == "postgresql":
            url = stack.enter_context(throwaway_database(PG_URL or ""))
        else:
            url = f"sqlite:///{data_dir / 'shared.db'}"
        env = ENV | {"DATA_DIR": str(data_dir), "DATABASE_URL": url}
        engine = make_engine(url)
        stack.callback(engine.dispose)
        migrate.upgrade(engine)
        accounts = enrol_accounts(engine, env, ["race", "backup", "throttled", "replayed"])
        servers = [start_server(env, data_dir / f"server{i}.log") for i in range(2)]
        stack.callback(stop, servers)
        wait_ready(servers)
        yield Deployment(servers, engine, accounts)


@pytest.fixture
def browsers() -> Iterator[Callable[[Server], Browser]]:
    opened: list[Browser] = []

    def open_one(server: Server) -> Browser:
        opened.append(Browser(server))
        return opened[-1]

    yield open_one
    for browser in opened:
        browser.close()


def half_signed_in(
    deployment: Deployment, browsers: Callable[[Server], Browser], email: str, count: int
) -> list[Browser]:
    """`count` sessions past the password step, alternating between the two processes."""
    sessions = [browsers(deployment.servers[i % 2]) for i in range(count)]
    for browser in sessions:
        browser.password(email, PASSWORD)
    return sessions


def race(sessions: list[Browser], send: Callable[[Browser], object]) -> list[tuple[int, str]]:
    """Every session sends at the same moment; (status, location) of each."""
    barrier = threading.Barrier(len(sessions))

    def one(browser: Browser) -> tuple[int, str]:
        barrier.wait(timeout=30)
        response = send(browser)
        assert "Traceback" not in response.text  # type: ignore[attr-defined]
        return response.status_code, response.headers.get("location", "")  # type: ignore[attr-defined]

    with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
        return list(pool.map(one, sessions))


def test_servers_share_keys_and_sessions(deployment: Deployment, browsers: Callable[[Server], Browser]) -> None:
    """The set-up itself: a cookie from one process is honoured by the other (one SECRET_KEY, one session
    table), which the tests below rely on to mean "the same deployment"."""
    first = browsers(deployment.servers[0])
    first.password(deployment.accounts["race"].email, PASSWORD)
    other = browsers(deployment.servers[1])
    other.http.cookies = first.http.cookies
    response = other.http.get("/login/verify")
    assert response.status_code == 200 and "Two-step verification" in response.text


def test_code_accepted_by_one_process_is_refused_by_the_other(
    deployment: Deployment, browsers: Callable[[Server], Browser]
) -> None:
    """Rule 9: C accepted on one process is refused on the other."""
    account = deployment.accounts["replayed"]
    first, second = browsers(deployment.servers[0]), browsers(deployment.servers[1])
    first.password(account.email, PASSWORD)
    second.password(account.email, PASSWORD)
    code = account.code()
    assert first.verify(code).status_code == 303
    response = second.verify(code)
    assert response.status_code == 422 and "Incorrect code" in response.text


def test_one_code_raced_over_twenty_sessions_on_two_processes_wins_once(
    deployment: Deployment, browsers: Callable[[Server], Browser]
) -> None:
    """Rule 10 across processes: 20 half-signed-in sessions, 10 per process, send one valid code at once:
    exactly one 303 to the target. The rest are refused: 422 (replay) or 429 (every attempt counts before
    it is checked, so after five the account waits)."""
    account = deployment.accounts["race"]
    sessions = half_signed_in(deployment, browsers, account.email, 20)
    code = account.code()
    results = race(sessions, lambda b: b.verify(code))
    winners = [r for r in results if r[0] == 303]
    assert len(winners) == 1, results
    assert winners[0][1] == "/settings"
    assert {status for status, _ in results} <= {303, 422, 429}, results


def test_one_backup_code_raced_over_two_processes_wins_once(
    deployment: Deployment, browsers: Callable[[Server], Browser]
) -> None:
    """Rule 17 across processes: one backup code from 10 sessions on two processes: one success, the code is
    used up, every other session refused."""
    account = deployment.accounts["backup"]
    sessions = half_signed_in(deployment, browsers, account.email, 10)
    results = race(sessions, lambda b: b.verify(account.codes[0], backup=True))
    assert [s for s, _ in results].count(303) == 1, results
    assert {status for status, _ in results} <= {303, 422, 429}, results
    with open_session(deployment.engine) as session:
        used = session.exec(select(RecoveryCode).where(RecoveryCode.used_at.is_not(None))).all()  # type: ignore[union-attr]
        assert len(used) == 1


def test_failures_on_both_processes_count_in_one_throttle(
    deployment: Deployment, browsers: Callable[[Server], Browser]
) -> None:
    """Rule 13 ("MUST be across login sessions"): 3 wrong codes on one process and 2 on the other make 5; the
    right code is then refused on both."""
    account = deployment.accounts["throttled"]
    first, second = browsers(deployment.servers[0]), browsers(deployment.servers[1])
    first.password(account.email, PASSWORD)
    second.password(account.email, PASSWORD)
    for browser in (first, first, first, second, second):
        assert browser.verify(account.wrong()).status_code == 422
    for browser in (first, second):
        response = browser.verify(account.code())
        assert response.status_code == 429 and "Try again in" in response.text
    with open_session(deployment.engine) as session:
        user = session.exec(select(User).where(User.email == account.email)).one()
        row = session.get(Throttle, throttle.user_key(user.id or 0))
        assert row is not None and row.failures == 5 and row.locked_until is not None

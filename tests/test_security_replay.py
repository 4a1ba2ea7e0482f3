"""Single use (security requirements 9, 10, 13, 17 and issue #4 item 2): an authenticator code or backup code is
accepted once, on every path (sign-in, step-up, disable, enrolment), and checking and consuming it is one
atomic step, also when many sessions race on a file SQLite database or on PostgreSQL."""

from __future__ import annotations

import json
import threading
from base64 import b64decode
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import SQLModel, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from db import throttle
from db.engine import make_engine, open_session
from db.models import AuthSession, RecoveryCode, SecurityEvent, Throttle, TotpDevice
from tests.conftest import PG_URL, Auth, Clock, Member, make_settings
from web.app import create_app

COOKIE = "__Host-chat360_session"


def verify(auth: Auth, code: str, *, backup: bool = False) -> object:
    data = {"method": "backup", "backup_code": code} if backup else {"code": code}
    return auth.post("/login/verify", data, page="/login/verify")


def reauth(auth: Auth, code: str, *, backup: bool = False) -> object:
    fields = {"reauth_factor": "backup" if backup else "totp", "reauth_secret": code}
    return auth.post("/reauth", fields | {"reauth_method": "GET", "reauth_next": "/settings"}, page="/settings")


def kinds(engine: Engine) -> list[str]:
    with open_session(engine) as session:
        return [e.kind for e in session.exec(select(SecurityEvent).order_by(SecurityEvent.id))]


def test_totp_code_works_once_at_sign_in(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    """Rule 9: sign in with C, sign out, sign in again with C inside its window: refused, and logged."""
    member = member_with_totp
    code = member.fresh_code()
    auth.password(member)
    assert verify(auth, code).status_code == 303
    auth.logout()
    auth.password(member)
    response = verify(auth, code)
    assert response.status_code == 422 and "Incorrect code" in response.text
    assert "replay_refused" in kinds(engine)


def test_code_used_to_confirm_enrolment_cannot_sign_in(auth: Auth, member_with_totp: Member) -> None:
    """Rule 9: the code typed at Confirm was accepted once already (the fixture confirmed with the current
    step's code and did not move the clock since)."""
    auth.password(member_with_totp)
    assert verify(auth, member_with_totp.code()).status_code == 422


def test_an_older_step_is_refused_after_a_newer_one(auth: Auth, member_with_totp: Member) -> None:
    """Rule 9: once step T is accepted, T-1 (still inside the drift window) is a replay too."""
    member = member_with_totp
    member.clock.advance(2)
    auth.password(member)
    assert verify(auth, member.code()).status_code == 303
    auth.logout()
    auth.password(member)
    assert verify(auth, member.code(-1)).status_code == 422
    assert verify(auth, member.fresh_code()).status_code == 303


def test_code_used_at_sign_in_is_refused_at_step_up_and_step_up_codes_once(
    auth: Auth, member_with_totp: Member
) -> None:
    """Rule 9: C accepted at sign-in is refused by "Confirm it's you"; a step-up code works there once."""
    member = member_with_totp
    code = member.fresh_code()
    auth.password(member)
    assert verify(auth, code).status_code == 303
    assert reauth(auth, code).status_code == 422
    fresh = member.fresh_code()
    assert reauth(auth, fresh).status_code == 303
    assert reauth(auth, fresh).status_code == 422


def test_used_code_cannot_disable_mfa(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    """Rule 9: Disable with a code already accepted is refused, and MFA stays on."""
    member = member_with_totp
    code = member.fresh_code()
    auth.password(member)
    assert verify(auth, code).status_code == 303
    response = auth.post("/settings/mfa/totp/disable", {"code": code}, page="/settings")
    assert response.status_code == 422
    with open_session(engine) as session:
        assert session.exec(select(TotpDevice).where(TotpDevice.user_id == member.user.id)).first() is not None
    assert auth.post("/settings/mfa/totp/disable", {"code": member.fresh_code()}, page="/settings").status_code == 303


def codes_left(engine: Engine, member: Member) -> int:
    with open_session(engine) as session:
        query = select(func.count()).where(RecoveryCode.user_id == member.user.id, RecoveryCode.used_at.is_(None))  # type: ignore[union-attr]
        return session.exec(query).one()


def test_backup_code_works_once_in_any_form(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    """Rules 17 and 19: a backup code typed lower-case with spaces for dashes is accepted once; afterwards no
    form of it works anywhere, and the count of codes left drops by one."""
    member = member_with_totp
    assert member.codes and len(member.codes) == 10
    code = member.codes[3]
    auth.password(member)
    assert verify(auth, code.lower().replace("-", " "), backup=True).status_code == 303
    assert codes_left(engine, member) == 9
    assert "9 of 10 left" in auth.client.get("/settings/mfa/totp").text
    assert reauth(auth, code, backup=True).status_code == 422
    auth.logout()
    auth.password(member)
    for form in (code, code.replace("-", ""), code.lower()):
        assert verify(auth, form, backup=True).status_code == 422, form
    assert codes_left(engine, member) == 9


# ---- races: many sessions, one code, at the same moment


@dataclass
class Shared:
    app: Starlette
    client: TestClient
    auth: Auth
    engine: Engine


@pytest.fixture(params=["sqlite-file", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[Shared]:
    """An app on a database that several connections really share: a SQLite file, or PostgreSQL."""
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL race runs only against a real server")
        engine, url = request.getfixturevalue("engine"), PG_URL
    else:
        url = f"sqlite:///{tmp_path / 'race.db'}"
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
    settings = make_settings(tmp_path, database_url=url, totp_clock=clock)
    app = create_app(settings, engine)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield Shared(app, client, Auth(client, engine, settings), engine)
    if request.param == "sqlite-file":
        engine.dispose()


def half_signed_in(auth: Auth, member: Member, count: int) -> list[tuple[str, str]]:
    """`count` separate sessions that passed the password step: (cookie, CSRF token) each."""
    sessions = []
    for _ in range(count):
        auth.client.cookies.clear()
        assert auth.password(member).headers["location"].startswith("/login/verify")
        auth.client.get("/login/verify")
        value = auth.client.cookies.get(COOKIE) or ""
        token = json.loads(b64decode(value.split(".")[0]))["csrf"]
        sessions.append((value, token))
    auth.client.cookies.clear()
    return sessions


def race(client: TestClient, sessions: list[tuple[str, str]], fields: Callable[[int], dict[str, str]]) -> list[int]:
    """POST /login/verify from every session at once; the statuses, in session order."""
    barrier = threading.Barrier(len(sessions))

    def one(i: int) -> int:
        cookie, token = sessions[i]
        barrier.wait(timeout=30)
        response = client.post(
            "/login/verify",
            data={"csrf_token": token, "next": "/settings"} | fields(i),
            headers={"Cookie": f"{COOKIE}={cookie}"},
        )
        assert response.status_code != 303 or response.headers["location"] == "/settings"
        assert "Traceback" not in response.text
        return response.status_code

    with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
        return list(pool.map(one, range(len(sessions))))


def signed_in_sessions(engine: Engine, member: Member) -> int:
    with open_session(engine) as session:
        query = select(func.count()).where(AuthSession.user_id == member.user.id, AuthSession.pending == False)  # noqa: E712
        return session.exec(query).one()


def test_one_totp_code_from_ten_sessions_at_once_signs_in_once(shared: Shared) -> None:
    """Rule 10: 10 parallel POSTs of one valid code from 10 half-signed-in sessions: exactly one succeeds.
    The others are refused: 422 (replay) or, since every attempt counts before it is checked, 429 once five
    of them have counted."""
    member = shared.auth.create()
    shared.auth.login(member)
    shared.auth.enable_totp(member)
    shared.auth.logout()
    sessions = half_signed_in(shared.auth, member, 10)
    code = member.fresh_code()
    statuses = race(shared.client, sessions, lambda i: {"code": code})
    assert statuses.count(303) == 1, statuses
    assert set(statuses) <= {303, 422, 429}, statuses
    assert signed_in_sessions(shared.engine, member) == 1


def test_one_backup_code_from_five_sessions_at_once_signs_in_once(shared: Shared) -> None:
    """Rule 17: the same backup code from 5 sessions at once: one success, four refusals, one code used."""
    member = shared.auth.create()
    shared.auth.login(member)
    shared.auth.enable_totp(member)
    shared.auth.logout()
    assert member.codes
    sessions = half_signed_in(shared.auth, member, 5)
    statuses = race(shared.client, sessions, lambda i: {"method": "backup", "backup_code": member.codes[0]})  # type: ignore[index]
    assert sorted(statuses) == [303, 422, 422, 422, 422], statuses
    assert codes_left(shared.engine, member) == 9
    assert signed_in_sessions(shared.engine, member) == 1


def test_parallel_wrong_codes_never_get_past_the_limit(shared: Shared) -> None:
    """Rule 13: 20 wrong codes at once from 20 sessions: none succeeds, exactly 5 are checked (the count is
    taken before the check, atomically), the rest wait, and the right code is refused afterwards."""
    member = shared.auth.create()
    shared.auth.login(member)
    shared.auth.enable_totp(member)
    shared.auth.logout()
    sessions = half_signed_in(shared.auth, member, 21)
    window = {member.code(k) for k in (-1, 0, 1)}
    wrong = [c for c in (str(100000 + i) for i in range(40)) if c not in window]
    statuses = race(shared.client, sessions[:20], lambda i: {"code": wrong[i]})
    assert statuses.count(303) == 0
    assert statuses.count(422) == 5 and statuses.count(429) == 15, statuses
    with open_session(shared.engine) as session:
        row = session.get(Throttle, throttle.user_key(member.user.id or 0))
        assert row is not None and row.failures == 5 and row.locked_until is not None
    last = race(shared.client, sessions[20:], lambda i: {"code": member.fresh_code()})
    assert last == [429]

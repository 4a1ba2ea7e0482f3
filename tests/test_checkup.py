"""The 2FA check-up: CHECKUP_DAYS after MFA was turned on, the sign-in asks once (before going on to
`next`) whether the member still has their authenticator and backup codes; once answered, not again until
MFA is turned on anew. Decided at sign-in, so signed-in pages stay at one SQL statement."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from db.engine import open_session
from db.models import SecurityEvent, TotpDevice, User
from tests.conftest import Auth, Clock, Member, make_settings
from tests.statements import counted
from web.app import create_app

HX = {"HX-Request": "true"}
CHECKUP = "/settings/mfa/checkup"


def _age_mfa(engine: Engine, days: int) -> None:
    """Move the authenticator's confirmation `days` into the past (instead of waiting weeks)."""
    with open_session(engine) as session:
        for device in session.exec(select(TotpDevice)):
            device.confirmed_at -= timedelta(days=days)
            session.add(device)
        session.commit()


def _second_step(auth: Auth, member: Member, next_path: str = "/activity") -> str:
    auth.password(member, next_path=next_path)
    response = auth.post("/login/verify", {"code": member.fresh_code(), "next": next_path}, page="/login/verify")
    assert response.status_code == 303, response.text
    return response.headers["location"]


def test_no_checkup_before_the_days_have_passed(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    _age_mfa(engine, 27)
    assert _second_step(auth, member_with_totp) == "/activity"


def test_checkup_is_asked_once_then_goes_on_without_htmx(
    auth: Auth, member_with_totp: Member, client: TestClient, engine: Engine
) -> None:
    _age_mfa(engine, 28)
    location = _second_step(auth, member_with_totp)
    assert location == f"{CHECKUP}?next=/activity"
    page = client.get(location)
    assert page.status_code == 200 and page.template.name == "mfa/checkup.html"  # type: ignore[attr-defined]
    assert ">Yes, I still have them</button>" in page.text
    assert ">Regenerate backup codes</a>" in page.text and ">add another factor</a>" in page.text
    done = auth.post(CHECKUP, {"next": "/activity"}, page=location)
    assert done.status_code == 303 and done.headers["location"] == "/activity"
    with open_session(engine) as session:
        assert session.exec(select(User)).one().mfa_checkup_at is not None
        assert [e.kind for e in session.exec(select(SecurityEvent))].count("mfa_checkup") == 1
    auth.logout()
    assert _second_step(auth, member_with_totp) == "/activity"  # never again


def test_checkup_with_htmx_navigates(auth: Auth, member_with_totp: Member, client: TestClient, engine: Engine) -> None:
    _age_mfa(engine, 40)
    location = _second_step(auth, member_with_totp, "/")
    done = auth.post(CHECKUP, {"next": "/"}, page=location, headers=HX)
    assert done.status_code == 200 and done.headers["HX-Redirect"] == "/"


def test_not_now_asks_again_at_the_next_sign_in(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    _age_mfa(engine, 30)
    assert _second_step(auth, member_with_totp).startswith(CHECKUP)
    auth.logout()
    assert _second_step(auth, member_with_totp).startswith(CHECKUP)


def test_checkup_comes_back_after_mfa_is_turned_on_again(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    _age_mfa(engine, 30)
    location = _second_step(auth, member_with_totp)
    auth.post(CHECKUP, {"next": "/"}, page=location)
    auth.post("/settings/mfa/totp/disable", {"code": member_with_totp.fresh_code()}, page="/settings")
    auth.enable_totp(member_with_totp)
    auth.logout()
    assert _second_step(auth, member_with_totp) == "/activity"  # a new MFA: not yet
    with open_session(engine) as session:  # the answer was before this MFA began
        user = session.exec(select(User)).one()
        assert user.mfa_checkup_at is not None
        user.mfa_checkup_at -= timedelta(days=30)
        session.add(user)
        session.commit()
    _age_mfa(engine, 29)
    auth.logout()
    assert _second_step(auth, member_with_totp).startswith(CHECKUP)


def test_checkup_days_zero_never_asks(tmp_path: Path, engine: Engine, clock: Clock) -> None:
    app = create_app(make_settings(tmp_path, totp_clock=clock, checkup_days=0), engine)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, app.state.settings)
        member = auth.create()
        auth.login(member)
        auth.enable_totp(member)
        auth.logout()
        _age_mfa(engine, 400)
        assert _second_step(auth, member) == "/activity"


def test_next_is_kept_safe(auth: Auth, member_with_totp: Member, client: TestClient, engine: Engine) -> None:
    _age_mfa(engine, 30)
    location = _second_step(auth, member_with_totp)
    done = auth.post(CHECKUP, {"next": "//evil.example/"}, page=location)
    assert done.headers["location"] == "/"


def test_signed_in_pages_stay_at_one_statement(
    auth: Auth, member_with_totp: Member, client: TestClient, engine: Engine
) -> None:
    _age_mfa(engine, 30)
    _second_step(auth, member_with_totp)
    with counted(engine) as statements:
        assert client.get("/settings").status_code == 200
    assert len(statements) == 1, statements

"""Settings › Multi-Factor Authentication › Time-Based OTP: expand, Edit, Enable, confirm, disable."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from db.engine import open_session
from db.factors import totp
from db.models import RecoveryCode, SecurityEvent, TotpDevice
from tests.conftest import Auth, Member, backup_codes, csrf_of, make_settings, setup_key
from web.app import (
    create_app,
    keyring_for,  # noqa: I001
)
from web.cookies import SECURE_NAME

HX = {"HX-Request": "true"}


def _devices(engine: Engine) -> list[TotpDevice]:
    with open_session(engine) as session:
        return list(session.exec(select(TotpDevice)))


def _start(auth: Auth, *, htmx: bool = True):  # noqa: ANN202
    return auth.post("/settings/mfa/totp/enable", page="/settings/mfa/totp", headers=HX if htmx else {})


def test_mfa_section_expands_in_place(auth: Auth, member: Member, client: TestClient) -> None:
    auth.login(member)
    page = client.get("/settings")
    assert 'aria-expanded="false"' in page.text and ">Multi-Factor Authentication</button>" in page.text
    assert "Time-Based OTP Authentication" not in page.text
    part = client.get("/settings?section=mfa", headers=HX)
    assert part.template.name == "account/_mfa_section.html"  # type: ignore[attr-defined]
    # the partial's own markup names its target (hx-target on the toggle); the server does not override it
    assert "HX-Retarget" not in part.headers and part.text.startswith('<div id="mfa-section"')
    assert 'aria-expanded="true"' in part.text
    assert "Time-Based OTP Authentication" in part.text and ">Off</span>" in part.text
    assert "<html" not in part.text
    full = client.get("/settings?section=mfa")
    assert full.template.name == "account/settings.html"  # type: ignore[attr-defined]
    assert 'aria-expanded="true"' in full.text
    assert 'Edit<span class="visually-hidden"> Time-Based OTP Authentication</span>' in full.text


def test_edit_shows_the_enable_switch(auth: Auth, member: Member, client: TestClient) -> None:
    auth.login(member)
    for headers in ({}, HX):
        html = client.get("/settings/mfa/totp", headers=headers).text
        assert re.search(r'role="switch" aria-checked="false">Enable</button>', html)


def test_enable_shows_qr_code_and_setup_key_without_storing_anything(
    auth: Auth, member: Member, client: TestClient, engine: Engine
) -> None:
    auth.login(member)
    response = _start(auth)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.text
    assert re.search(r'<div class="qr" role="img" aria-label="QR code[^"]*"><svg', html)
    secret = setup_key(html)
    assert len(base64.b32decode(secret)) == 20
    assert 'inputmode="numeric"' in html and 'autocomplete="one-time-code"' in html
    assert '<label for="code">6-digit code</label>' in html and ">Confirm</button>" in html
    assert "src=" not in html.split('class="qr"')[1].split("</div>")[0]
    assert _devices(engine) == []
    payload = client.cookies.get(SECURE_NAME).split(".")[0]  # type: ignore[union-attr]
    session = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))
    assert secret not in json.dumps(session)
    assert set(session) >= {"mfa.pending"}


def test_enable_without_javascript_redirects_to_the_panel(auth: Auth, member: Member, client: TestClient) -> None:
    auth.login(member)
    response = _start(auth, htmx=False)
    assert response.status_code == 303 and response.headers["location"] == "/settings/mfa/totp"
    page = client.get("/settings/mfa/totp")
    assert page.headers["Cache-Control"] == "no-store"
    assert setup_key(page.text)


def test_two_enrolments_give_different_secrets(auth: Auth, member: Member) -> None:
    auth.login(member)
    first = setup_key(_start(auth).text)
    auth.post("/settings/mfa/totp/cancel", page="/settings/mfa/totp")
    assert first != setup_key(_start(auth).text)


@pytest.mark.parametrize("bad", ["000000", "12345", "１２３４５６", "١٢٣٤٥٦", "abc", "", "1" * 40])
def test_confirm_with_incorrect_code_changes_nothing(
    auth: Auth, member: Member, client: TestClient, engine: Engine, bad: str
) -> None:
    auth.login(member)
    secret = setup_key(_start(auth).text)
    if bad == "000000" and pyotp.TOTP(secret).at(member.clock()) == bad:
        bad = "111111"
    response = auth.post("/settings/mfa/totp/confirm", {"code": bad}, page="/settings/mfa/totp", headers=HX)
    assert response.status_code == 422
    assert re.search(r'id="code"[^>]*aria-invalid="true"[^>]*aria-describedby="code-hint code-error"', response.text)
    assert 'id="code-error" role="alert">Incorrect code.' in response.text
    assert setup_key(response.text) == secret
    assert _devices(engine) == []
    assert ">Off</span>" in client.get("/settings?section=mfa").text


def test_confirm_with_the_right_code_enables_mfa_and_shows_backup_codes(
    auth: Auth, member: Member, client: TestClient, engine: Engine
) -> None:
    auth.login(member)
    secret = setup_key(_start(auth).text)
    member.clock.advance()
    response = auth.post(
        "/settings/mfa/totp/confirm", {"code": pyotp.TOTP(secret).at(member.clock())}, page="/settings"
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert 'role="status"' in response.text and "Multi-factor authentication is enabled." in response.text
    codes = backup_codes(response.text)
    assert len(codes) == len(set(codes)) == 10
    link = re.search(
        r'<a class="button" href="data:text/plain;charset=utf-8,([^"]+)" download="([^"]+)">', response.text
    )
    assert link and link.group(2).endswith(".txt")
    from urllib.parse import unquote

    assert [c for c in codes if c in unquote(link.group(1))] == codes
    devices = _devices(engine)
    assert len(devices) == 1 and secret not in devices[0].secret_encrypted
    assert ">On</span>" in client.get("/settings?section=mfa").text
    assert "setup-key-value" not in client.get("/settings/mfa/totp").text


def test_confirm_after_the_pending_secret_expired_is_refused(
    tmp_path: Path,
    engine: Engine,
    clock,  # noqa: ANN001
) -> None:
    settings = make_settings(tmp_path, enrolment_ttl=-1, totp_clock=clock)
    with TestClient(create_app(settings, engine), base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, settings)
        member = auth.create()
        auth.login(member)
        secret = setup_key(_start(auth).text)
        code = pyotp.TOTP(secret).at(clock())
        response = auth.post("/settings/mfa/totp/confirm", {"code": code}, page="/settings")
        assert response.status_code == 422 and "has expired" in response.text
        assert _devices(engine) == []


def test_pending_secret_is_bound_to_its_member(auth: Auth, client: TestClient, engine: Engine) -> None:
    ann, bob = auth.create("ann@example.com"), auth.create("bob@example.com")
    auth.login(ann)
    secret = setup_key(_start(auth).text)
    sealed = json.loads(
        base64.b64decode(client.cookies.get(SECURE_NAME).split(".")[0] + "==")  # type: ignore[union-attr]
    )["mfa.pending"]
    auth.logout()
    auth.login(bob)

    with pytest.raises(totp.EnrolmentExpired):
        totp.open_enrolment(keyring_for(auth.settings), sealed, user_id=bob.user.id or 0, ttl=600)
    assert totp.open_enrolment(keyring_for(auth.settings), sealed, user_id=ann.user.id or 0, ttl=600) == secret


def test_enable_needs_a_fresh_confirmation(tmp_path: Path, engine: Engine, clock) -> None:  # noqa: ANN001
    settings = make_settings(tmp_path, reauth_window=-1, totp_clock=clock)
    with TestClient(create_app(settings, engine), base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, settings)
        auth.login(auth.create())
        response = _start(auth)
        assert response.headers["HX-Retarget"] == "#modal"
        assert "Confirm it's you" in response.text
        assert "setup-key-value" not in response.text and "<svg" not in response.text


def test_disable_needs_a_current_code(auth: Auth, member: Member, client: TestClient, engine: Engine) -> None:
    auth.login(member)
    auth.enable_totp(member)
    form = client.get("/settings/mfa/totp?action=disable").text
    assert '<label for="code">Authentication code</label>' in form and ">Disable</button>" in form
    wrong = auth.post("/settings/mfa/totp/disable", {"code": "000000"}, page="/settings", headers=HX)
    assert wrong.status_code == 422 and len(_devices(engine)) == 1
    response = auth.post("/settings/mfa/totp/disable", {"code": member.fresh_code()}, page="/settings")
    assert response.status_code == 303
    assert _devices(engine) == []
    with open_session(engine) as session:
        assert list(session.exec(select(RecoveryCode))) == []
        assert "mfa_disabled" in [e.kind for e in session.exec(select(SecurityEvent))]
    assert "Multi-factor authentication is turned off" in client.get(response.headers["location"]).text


def test_disable_with_a_backup_code(auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    auth.enable_totp(member)
    data = {"method": "backup", "backup_code": member.codes[3]}  # type: ignore[index]
    assert auth.post("/settings/mfa/totp/disable", data, page="/settings").status_code == 303
    assert _devices(engine) == []


def test_re_enrolling_replaces_the_secret(auth: Auth, member: Member) -> None:
    auth.login(member)
    auth.enable_totp(member)
    old_secret = member.secret
    auth.post("/settings/mfa/totp/disable", {"code": member.fresh_code()}, page="/settings")
    auth.enable_totp(member)
    assert member.secret != old_secret
    auth.logout()
    auth.password(member)
    member.clock.advance()
    old_code = pyotp.TOTP(old_secret).at(member.clock())  # type: ignore[arg-type]
    assert auth.post("/login/verify", {"code": old_code}, page="/login/verify").status_code == 422


def test_app_name_with_a_colon_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="APP_NAME"):
        make_settings(tmp_path, app_name="Acme: Ops")


def test_setup_key_uses_the_app_name_as_issuer(tmp_path: Path, engine: Engine, clock) -> None:  # noqa: ANN001
    settings = make_settings(tmp_path, app_name="Acme Ops", totp_clock=clock)
    with TestClient(create_app(settings, engine), base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, settings)
        auth.login(auth.create())
        html = _start(auth).text
        assert "QR code for adding Acme Ops to your authenticator app" in html
        assert backup_codes(html) == []
        assert csrf_of(html)

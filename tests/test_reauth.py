"""Step-up re-authentication ("Confirm it's you") before webhooks, billing and MFA changes."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from db.engine import open_session
from db.models import SecurityEvent, Webhook
from tests.conftest import Auth, Member, csrf_of
from web.cookies import SECURE_NAME

HX = {"HX-Request": "true"}
STALE = 901


def _hidden(html: str) -> dict[str, str]:
    """The fields the Verify form carries (not the separate "use the other factor" form's switch)."""
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    fields.pop("reauth_switch", None)
    return fields


def _webhooks(engine: Engine) -> list[str]:
    with open_session(engine) as session:
        return [w.url for w in session.exec(select(Webhook))]


@pytest.fixture
def admin_with_totp(auth: Auth, admin: Member) -> Member:
    auth.login(admin)
    auth.enable_totp(admin)
    return admin


def test_fresh_session_opens_webhooks_directly(auth: Auth, admin_with_totp: Member, client: TestClient) -> None:
    page = client.get("/settings/webhooks")
    assert page.status_code == 200 and "Webhook URL" in page.text


@pytest.mark.parametrize("path", ["/settings/webhooks", "/settings/billing"])
def test_stale_session_is_asked_to_confirm(auth: Auth, admin_with_totp: Member, client: TestClient, path: str) -> None:
    auth.age_sessions(STALE)
    plain = client.get(path)
    assert plain.status_code == 303 and plain.headers["location"] == f"/reauth?next={path}"
    page = client.get(plain.headers["location"])
    assert 'aria-modal="true"' in page.text and "Confirm it's you" in page.text
    assert '<label for="reauth_secret">Authentication code</label>' in page.text and ">Verify</button>" in page.text
    htmx = client.get(path, headers=HX)
    assert htmx.status_code == 200
    assert htmx.headers["HX-Retarget"] == "#modal" and htmx.headers["HX-Reswap"] == "innerHTML"
    assert htmx.text.startswith("<dialog") and "Webhook URL" not in htmx.text


def test_verify_returns_to_where_the_member_was_going(auth: Auth, admin_with_totp: Member, client: TestClient) -> None:
    auth.age_sessions(STALE)
    before = client.cookies.get(SECURE_NAME)
    page = client.get("/reauth?next=/settings/billing")
    data = _hidden(page.text) | {"reauth_secret": admin_with_totp.fresh_code()}
    response = client.post("/reauth", data=data)
    assert response.status_code == 303 and response.headers["location"] == "/settings/billing"
    assert client.cookies.get(SECURE_NAME) != before
    assert client.get("/settings/billing").status_code == 200


def test_htmx_verify_navigates_with_hx_redirect(auth: Auth, admin_with_totp: Member, client: TestClient) -> None:
    auth.age_sessions(STALE)
    dialog = client.get("/settings/webhooks", headers=HX).text
    data = _hidden(dialog) | {"reauth_secret": admin_with_totp.fresh_code()}
    response = client.post("/reauth", data=data, headers=HX)
    assert response.status_code == 200 and response.headers["HX-Redirect"] == "/settings/webhooks"


def test_stale_save_resumes_after_verify_without_retyping(
    auth: Auth, admin_with_totp: Member, client: TestClient, engine: Engine
) -> None:
    token = csrf_of(client.get("/settings/webhooks").text)
    auth.age_sessions(STALE)
    stale = client.post("/settings/webhooks", data={"csrf_token": token, "url": "https://example.com/hook"}, headers=HX)
    assert stale.headers["HX-Retarget"] == "#modal"
    assert _webhooks(engine) == []
    fields = _hidden(stale.text)
    assert fields["url"] == "https://example.com/hook" and fields["reauth_method"] == "POST"
    verified = client.post("/reauth", data=fields | {"reauth_secret": admin_with_totp.fresh_code()}, headers=HX)
    assert verified.status_code == 307 and verified.headers["location"] == "/settings/webhooks"
    # A browser repeats the same POST (same body) at the 307's location.
    resumed = client.post("/settings/webhooks", data=fields | {"reauth_secret": "x"}, headers=HX)
    assert resumed.status_code == 200 and resumed.headers["HX-Retarget"] == "#webhooks"
    assert _webhooks(engine) == ["https://example.com/hook"]
    assert "whsec_" in resumed.text


def test_stale_save_without_javascript_is_a_page_that_resumes(
    auth: Auth, admin_with_totp: Member, client: TestClient, engine: Engine
) -> None:
    token = csrf_of(client.get("/settings/billing").text)
    auth.age_sessions(STALE)
    data = {"csrf_token": token, "plan": "team", "billing_email": "billing@example.com"}
    stale = client.post("/settings/billing", data=data)
    assert stale.template.name == "auth/reauth.html"  # type: ignore[attr-defined]
    fields = _hidden(stale.text)
    verified = client.post("/reauth", data=fields | {"reauth_secret": admin_with_totp.fresh_code()})
    assert verified.status_code == 307
    resumed = client.post(verified.headers["location"], data=fields)
    assert resumed.status_code == 303 and resumed.headers["location"] == "/settings/billing?saved=1"
    assert "billing@example.com" in client.get("/settings/billing").text


def test_freshness_is_checked_again_at_submit(auth: Auth, admin_with_totp: Member, client: TestClient, engine) -> None:  # noqa: ANN001
    token = csrf_of(client.get("/settings/webhooks").text)  # opened while fresh
    auth.age_sessions(STALE)
    response = client.post("/settings/webhooks", data={"csrf_token": token, "url": "https://example.com/x"})
    assert response.template.name == "auth/reauth.html"  # type: ignore[attr-defined]
    assert _webhooks(engine) == []


def test_wrong_code_keeps_the_dialog_open(auth: Auth, admin_with_totp: Member, client: TestClient) -> None:
    auth.age_sessions(STALE)
    dialog = client.get("/settings/webhooks", headers=HX).text
    response = client.post("/reauth", data=_hidden(dialog) | {"reauth_secret": "000000"}, headers=HX)
    assert response.status_code == 422 and response.headers["HX-Retarget"] == "#modal"
    assert 'aria-invalid="true"' in response.text
    assert client.get("/settings/webhooks").status_code == 303


def test_a_code_used_to_sign_in_is_refused_at_step_up(auth: Auth, admin_with_totp: Member, client: TestClient) -> None:
    auth.logout()
    auth.password(admin_with_totp)
    code = admin_with_totp.fresh_code()
    auth.post("/login/verify", {"code": code}, page="/login/verify")
    auth.age_sessions(STALE)
    dialog = client.get("/settings/webhooks", headers=HX).text
    assert client.post("/reauth", data=_hidden(dialog) | {"reauth_secret": code}).status_code == 422


def test_member_without_mfa_confirms_with_the_password(auth: Auth, admin: Member, client: TestClient) -> None:
    auth.login(admin)
    auth.age_sessions(STALE)
    page = client.get("/reauth?next=/settings/webhooks")
    assert '<label for="reauth_secret">Password</label>' in page.text
    data = _hidden(page.text) | {"reauth_secret": admin.password}
    assert client.post("/reauth", data=data).status_code == 303
    assert client.get("/settings/webhooks").status_code == 200


@pytest.mark.parametrize("evil", ["https://evil.example", "//evil.example", "/\\evil.example", "%2F%2Fevil.example"])
def test_reauth_never_leaves_the_site(auth: Auth, admin: Member, client: TestClient, evil: str) -> None:
    auth.login(admin)
    page = client.get("/reauth", params={"next": evil})
    assert _hidden(page.text)["reauth_next"] == "/settings"
    data = _hidden(page.text) | {"reauth_next": evil, "reauth_secret": admin.password}
    assert client.post("/reauth", data=data).headers["location"] == "/settings"


def test_agents_get_403_not_the_dialog(auth: Auth, member: Member, client: TestClient) -> None:
    auth.login(member)
    auth.age_sessions(STALE)
    for path in ("/settings/webhooks", "/settings/billing"):
        for headers in ({}, HX):
            response = client.get(path, headers=headers)
            assert response.status_code == 403, path
            assert "Confirm it's you" not in response.text
    assert ">Webhooks</a>" not in client.get("/settings").text


def test_step_up_is_logged(auth: Auth, admin_with_totp: Member, client: TestClient, engine: Engine) -> None:
    auth.age_sessions(STALE)
    page = client.get("/reauth?next=/settings/webhooks")
    client.post("/reauth", data=_hidden(page.text) | {"reauth_secret": admin_with_totp.fresh_code()})
    with open_session(engine) as session:
        assert "step_up" in [e.kind for e in session.exec(select(SecurityEvent))]


def test_switching_to_a_backup_code_keeps_the_action_to_resume(
    auth: Auth, admin_with_totp: Member, client: TestClient, engine: Engine
) -> None:
    token = csrf_of(client.get("/settings/webhooks").text)
    auth.age_sessions(STALE)
    stale = client.post("/settings/webhooks", data={"csrf_token": token, "url": "https://example.com/b"}, headers=HX)
    switch = re.search(r'name="reauth_switch" value="backup"', stale.text)
    assert switch and ">Use a backup code</button>" in stale.text
    fields = _hidden(stale.text)
    switched = client.post("/reauth", data=fields | {"reauth_switch": "backup"}, headers=HX)
    assert switched.status_code == 200 and '<label for="reauth_secret">Backup code</label>' in switched.text
    fields = _hidden(switched.text.split('name="reauth_switch"')[0])
    assert 'name="reauth_switch" value="totp"' in switched.text
    assert fields["url"] == "https://example.com/b" and fields["reauth_factor"] == "backup"
    code = (admin_with_totp.codes or [])[0]
    verified = client.post("/reauth", data=fields | {"reauth_secret": code}, headers=HX)
    assert verified.status_code == 307
    client.post("/settings/webhooks", data=fields, headers=HX)
    assert _webhooks(engine) == ["https://example.com/b"]

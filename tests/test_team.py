"""Team administration: members, roles, the MFA policy, Reset MFA and unlocking; admins only."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from db import org
from db.clock import now
from db.engine import open_session
from db.models import OrgPolicy, SecurityEvent, TotpDevice, User
from tests.conftest import PASSWORD, Auth, Member, csrf_of, use_cookie
from web.cookies import SECURE_NAME

HX = {"HX-Request": "true"}
STALE = 901


def _policy(engine: Engine, **values: object) -> None:
    with open_session(engine) as session:
        policy = session.get(OrgPolicy, 1) or OrgPolicy(id=1)
        for key, value in values.items():
            setattr(policy, key, value)
        policy.admins_since = policy.admins_since or (now() if policy.require_admins else None)
        policy.agents_since = policy.agents_since or (now() if policy.require_agents else None)
        session.add(policy)
        session.commit()


def _events(engine: Engine) -> list[SecurityEvent]:
    with open_session(engine) as session:
        return list(session.exec(select(SecurityEvent)))


def test_team_lists_members_with_mfa_state(auth: Auth, admin: Member, member: Member, client: TestClient) -> None:
    auth.login(admin)
    html = client.get("/team").text
    assert '<th scope="col">MFA</th>' in html
    assert member.email in html and admin.email in html
    assert ">Require MFA for admins</label>" in html and ">Require MFA for agents</label>" in html
    assert ">Save policy</button>" in html
    assert ">Team</a>" in client.get("/").text


def test_agents_cannot_open_team(auth: Auth, member: Member, client: TestClient) -> None:
    auth.login(member)
    assert client.get("/team").status_code == 403
    token = csrf_of(client.get("/settings").text)
    assert client.post("/team/policy", data={"csrf_token": token, "require_agents": "1"}).status_code == 403
    assert client.post("/team/1/reset-mfa", data={"csrf_token": token}).status_code == 403
    assert ">Team</a>" not in client.get("/").text


def test_add_member_gives_a_one_time_set_password_link(auth: Auth, admin: Member, client: TestClient) -> None:
    auth.login(admin)
    response = auth.post("/team/members", {"email": "new@example.com", "role": "agent"}, page="/team", headers=HX)
    assert response.status_code == 200
    link = re.search(r"<code>https://testserver(/set-password/[^<]+)</code>", response.text)
    assert link, response.text
    duplicate = auth.post("/team/members", {"email": "new@example.com", "role": "agent"}, page="/team", headers=HX)
    assert duplicate.status_code == 422 and "already exists" in duplicate.text
    auth.logout()
    page = client.get(link.group(1))
    client.post(link.group(1), data={"csrf_token": csrf_of(page.text), "password": PASSWORD})
    assert client.post(link.group(1), data={"csrf_token": csrf_of(page.text), "password": PASSWORD}).status_code == 404
    assert auth.password(Member(User(email="new@example.com", role="agent"), admin.clock)).status_code == 303


def test_the_last_admin_cannot_be_demoted(auth: Auth, admin: Member, client: TestClient) -> None:
    auth.login(admin)
    response = auth.post(f"/team/{admin.user.id}/role", {"role": "agent"}, page="/team", headers=HX)
    assert response.status_code == 422 and "at least one admin" in response.text


def test_policy_needs_step_up_and_is_logged(auth: Auth, admin: Member, client: TestClient, engine: Engine) -> None:
    auth.login(admin)
    auth.age_sessions(STALE)
    stale = auth.post("/team/policy", {"require_agents": "1"}, page="/settings", headers=HX)
    assert stale.headers["HX-Retarget"] == "#modal"
    with open_session(engine) as session:
        assert not org.get_policy(session).require_agents
    auth.age_sessions(-STALE)
    assert auth.post("/team/policy", {"require_agents": "1", "grace_days": "0"}, page="/team").status_code == 303
    with open_session(engine) as session:
        policy = org.get_policy(session)
        assert policy.require_agents and not policy.require_admins
    assert "policy_changed" in [e.kind for e in _events(engine)]


def test_policy_refuses_a_bad_grace_period(auth: Auth, admin: Member) -> None:
    auth.login(admin)
    response = auth.post("/team/policy", {"require_agents": "1", "grace_days": "-3"}, page="/team", headers=HX)
    assert response.status_code == 422
    assert re.search(r'id="grace_days"[^>]*aria-invalid="true"', response.text)


def test_policy_sends_a_member_without_mfa_to_enrolment(
    auth: Auth, member: Member, client: TestClient, engine: Engine
) -> None:
    _policy(engine, require_agents=True)
    auth.login(member)
    for path in ["/", "/settings", "/activity", "/settings/webhooks", "/reauth?next=/"]:
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/settings/mfa/totp", path
        htmx = client.get(path, headers=HX)
        assert htmx.status_code == 403 and htmx.headers["HX-Redirect"] == "/settings/mfa/totp", path
    page = client.get("/settings/mfa/totp")
    assert page.status_code == 200 and "requires multi-factor authentication" in page.text
    auth.enable_totp(member)
    assert client.get("/").status_code == 200


def test_policy_with_grace_period_shows_a_deadline(auth: Auth, member: Member, client: TestClient, engine) -> None:  # noqa: ANN001
    _policy(engine, require_agents=True, grace_days=7)
    auth.login(member)
    page = client.get("/")
    assert page.status_code == 200 and "Set it up before" in page.text
    assert "Set it up before" in client.get("/settings").text
    dismissed = auth.post("/policy-banner/dismiss", {"next": "/settings"}, page="/")
    assert dismissed.headers["location"] == "/settings"
    assert "Set it up before" not in client.get("/").text


def test_policy_grace_period_ends(auth: Auth, member: Member, client: TestClient, engine: Engine) -> None:
    _policy(engine, require_agents=True, grace_days=1, agents_since=now() - timedelta(days=3))
    with open_session(engine) as session:
        user = session.get(type(member.user), member.user.id)
        user.created_at = now() - timedelta(days=3)  # type: ignore[union-attr]
        session.add(user)
        session.commit()
    auth.login(member)
    assert client.get("/").headers["location"] == "/settings/mfa/totp"


def test_policy_forbids_turning_mfa_off(auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    auth.enable_totp(member)
    _policy(engine, require_agents=True)
    response = auth.post("/settings/mfa/totp/disable", {"code": member.fresh_code()}, page="/settings", headers=HX)
    assert response.status_code == 422 and "requires multi-factor authentication" in response.text
    with open_session(engine) as session:
        assert len(list(session.exec(select(TotpDevice)))) == 1


def test_reset_mfa_ends_the_members_sessions_and_is_logged(
    auth: Auth, admin: Member, member: Member, client: TestClient, engine: Engine
) -> None:
    auth.login(member)
    auth.enable_totp(member)
    members_cookie = client.cookies.get(SECURE_NAME)
    auth.logout()
    auth.login(admin)
    auth.age_sessions(STALE)
    stale = auth.post(f"/team/{member.user.id}/reset-mfa", {"reason": "lost phone"}, page="/team", headers=HX)
    assert stale.headers["HX-Retarget"] == "#modal"
    auth.age_sessions(-2 * STALE)
    response = auth.post(f"/team/{member.user.id}/reset-mfa", {"reason": "lost phone"}, page="/team", headers=HX)
    assert response.status_code == 200 and "their sessions have ended" in response.text
    with open_session(engine) as session:
        assert list(session.exec(select(TotpDevice))) == []
    reset = [e for e in _events(engine) if e.kind == "mfa_reset"]
    assert len(reset) == 1
    assert reset[0].actor_label == admin.email and reset[0].target_label == member.email
    assert "lost phone" in reset[0].detail
    assert member.email in client.get("/activity?kind=mfa_reset").text
    use_cookie(client, members_cookie)  # type: ignore[arg-type]
    assert client.get("/settings").status_code == 303


def test_admin_sees_and_lifts_a_lock(auth: Auth, admin: Member, member: Member, client: TestClient) -> None:
    auth.login(member)
    auth.enable_totp(member)
    auth.logout()
    for _ in range(5):
        auth.password(member)
        auth.post("/login/verify", {"code": "000000"}, page="/login/verify")
    auth.password(member)
    assert auth.post("/login/verify", {"code": member.fresh_code()}, page="/login/verify").status_code == 429
    client.cookies.clear()
    auth.login(admin)
    assert "Locked until" in client.get("/team").text
    assert auth.post(f"/team/{member.user.id}/unlock", page="/team").status_code == 303
    assert "Locked until" not in client.get("/team").text
    auth.logout()
    auth.password(member)
    assert auth.post("/login/verify", {"code": member.fresh_code()}, page="/login/verify").status_code == 303


def test_enrolment_under_the_policy_can_confirm_its_way_through_a_stale_session(
    auth: Auth, member: Member, client: TestClient, engine: Engine
) -> None:
    _policy(engine, require_agents=True)
    auth.login(member)
    auth.age_sessions(STALE)
    stale = auth.post("/settings/mfa/totp/enable", page="/settings/mfa/totp")
    assert stale.template.name == "auth/reauth.html"  # type: ignore[attr-defined]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', stale.text))
    verified = client.post("/reauth", data=fields | {"reauth_secret": member.password})
    assert verified.status_code == 307 and verified.headers["location"] == "/settings/mfa/totp/enable"
    resumed = client.post("/settings/mfa/totp/enable", data=fields)
    assert resumed.status_code == 303 and resumed.headers["location"] == "/settings/mfa/totp"
    assert "setup-key-value" in client.get("/settings/mfa/totp").text

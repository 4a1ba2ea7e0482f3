"""Remembered browsers: offered at the second step only when the org policy allows it for the role, for at
most the policy's days; such a browser skips the second step but never the password nor "Confirm it's you";
forgotten on a password change, "Sign out other sessions", an admin's reset, or "Forget"."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col, select

from db import org
from db.engine import open_session
from db.events import OPERATOR
from db.models import Notice, RememberedBrowser, SecurityEvent
from tests.conftest import Auth, Member
from web.cookies import REMEMBER_SECURE

HX = {"HX-Request": "true", "HX-Request-Type": "partial"}
NEW_PASSWORD = "a different horse battery staple"


def set_policy(engine: Engine, *, agents: bool = True, admins: bool = False, days: str = "7") -> None:
    with open_session(engine) as session:
        org.save_policy(
            session,
            require_admins=False,
            require_agents=False,
            grace_days="0",
            actor=OPERATOR,
            remember_admins=admins,
            remember_agents=agents,
            remember_days=days,
        )


def remembered(engine: Engine) -> list[RememberedBrowser]:
    with open_session(engine) as session:
        return list(session.exec(select(RememberedBrowser)))


def sign_in_remembering(auth: Auth, member: Member, *, remember: bool = True):  # noqa: ANN201
    response = auth.password(member)
    assert response.headers["location"].startswith("/login/verify")
    data = {"code": member.fresh_code()} | ({"remember": "1"} if remember else {})
    response = auth.post("/login/verify", data, page="/login/verify")
    assert response.status_code == 303, response.text
    return response


def skips_second_step(auth: Auth, member: Member) -> bool:
    auth.logout()
    response = auth.password(member)
    assert response.status_code == 303, response.text
    if not response.headers["location"].startswith("/login/verify"):
        return True
    done = auth.post("/login/verify", {"code": member.fresh_code()}, page="/login/verify")  # signed in again
    assert done.status_code == 303, done.text
    return False


def test_policy_off_offers_nothing_and_a_forged_field_does_nothing(
    auth: Auth, member_with_totp: Member, engine: Engine
) -> None:
    set_policy(engine, agents=False, admins=True)  # admins only: this agent may not
    auth.password(member_with_totp)
    assert "Remember this browser" not in auth.client.get("/login/verify").text
    response = auth.post(
        "/login/verify", {"code": member_with_totp.fresh_code(), "remember": "1"}, page="/login/verify"
    )
    assert response.status_code == 303
    assert REMEMBER_SECURE not in response.headers.get("set-cookie", "")
    assert remembered(engine) == []
    assert not skips_second_step(auth, member_with_totp)


def test_remembered_browser_skips_the_second_step_but_not_the_password(
    auth: Auth, member_with_totp: Member, engine: Engine
) -> None:
    set_policy(engine, days="7")
    auth.password(member_with_totp)
    page = auth.client.get("/login/verify").text
    assert '<label for="remember">Remember this browser for 7 days</label>' in page
    response = sign_in_remembering(auth, member_with_totp)
    header = next(h for h in response.headers.get_list("set-cookie") if h.startswith(REMEMBER_SECURE + "="))
    token = header.split(";")[0].split("=", 1)[1]
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in header.split(";")[1:]}
    assert {"httponly", "secure", "path"} <= attrs.keys() and attrs["samesite"].lower() == "samesite=lax"
    assert attrs["max-age"] == f"Max-Age={7 * 86400}"
    [row] = remembered(engine)
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in row.token_hash
    assert timedelta(days=6, hours=23) < row.expires_at - row.created_at <= timedelta(days=7)
    assert skips_second_step(auth, member_with_totp)
    auth.logout()
    wrong = auth.post("/login", {"email": member_with_totp.email, "password": "not the password at all"})
    assert wrong.status_code == 422 and REMEMBER_SECURE in auth.client.cookies
    with open_session(engine) as session:
        kinds = [e.kind for e in session.exec(select(SecurityEvent))]
        details = [e.detail for e in session.exec(select(SecurityEvent).where(SecurityEvent.kind == "sign_in"))]
        texts = [n.text for n in session.exec(select(Notice))]
    assert "browser_remembered" in kinds and "factor=remembered_browser" in details
    assert any("was remembered for 7 days" in t for t in texts)


def test_remembered_browser_never_skips_step_up(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    set_policy(engine)
    sign_in_remembering(auth, member_with_totp)
    sensitive = "/settings/mfa/totp/enable"  # asks "Confirm it's you" first; changes nothing when TOTP is on
    fresh = auth.post(sensitive, page="/settings/mfa/totp")
    assert fresh.status_code == 200 and "Confirm it's you" not in fresh.text, "fresh after a real second step"
    assert skips_second_step(auth, member_with_totp)
    asked = auth.post(sensitive, page="/settings/mfa/totp")
    assert asked.status_code == 200 and '<h2 id="reauth-title">Confirm it\'s you</h2>' in asked.text
    asked = auth.post(sensitive, page="/settings/mfa/totp", headers=HX)
    assert asked.headers.get("hx-retarget") == "#modal" and "Confirm it's you" in asked.text


def test_password_change_forgets_remembered_browsers(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    set_policy(engine)
    sign_in_remembering(auth, member_with_totp)
    data = {"current_password": member_with_totp.password, "new_password": NEW_PASSWORD}
    assert auth.post("/settings/password", data, page="/settings").status_code == 303
    assert remembered(engine) == []
    member_with_totp.password = NEW_PASSWORD
    assert not skips_second_step(auth, member_with_totp)


@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
def test_sign_out_other_sessions_forgets_remembered_browsers(
    auth: Auth, member_with_totp: Member, engine: Engine, headers: dict[str, str]
) -> None:
    set_policy(engine)
    sign_in_remembering(auth, member_with_totp)
    response = auth.post("/settings/sessions/revoke", page="/settings", headers=headers)
    assert response.status_code == 200 and "No browser is remembered" in response.text
    assert remembered(engine) == []
    assert not skips_second_step(auth, member_with_totp)


def test_admin_reset_forgets_remembered_browsers(
    auth: Auth, member_with_totp: Member, admin: Member, engine: Engine
) -> None:
    set_policy(engine)
    sign_in_remembering(auth, member_with_totp)
    auth.logout()
    auth.login(admin)
    assert auth.post(f"/team/{member_with_totp.user.id}/reset-mfa", page="/team").status_code == 303
    assert remembered(engine) == []


@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
def test_forget_lists_and_forgets_a_browser(
    auth: Auth, member_with_totp: Member, engine: Engine, headers: dict[str, str]
) -> None:
    set_policy(engine)
    sign_in_remembering(auth, member_with_totp)
    page = auth.client.get("/settings").text
    assert (
        "Remembered browsers" in page and '>Forget<span class="visually-hidden"> Unknown browser at testclient' in page
    )
    [row] = remembered(engine)
    response = auth.post(f"/settings/browsers/{row.id}/forget", page="/settings", headers=headers)
    if headers:
        assert response.status_code == 200 and response.template.name == "account/_sessions.html"  # type: ignore[attr-defined]
        assert "That browser was forgotten." in response.text
    else:
        assert response.status_code == 303 and response.headers["location"] == "/settings?sessions=forgotten"
    assert remembered(engine) == []
    assert not skips_second_step(auth, member_with_totp)
    with open_session(engine) as session:
        assert session.exec(select(SecurityEvent).where(SecurityEvent.kind == "browser_forgotten")).first()


def test_forget_refuses_another_members_browser(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    set_policy(engine)
    sign_in_remembering(auth, member_with_totp)
    [row] = remembered(engine)
    auth.logout()
    auth.login(auth.create("other@example.com"))
    assert auth.post(f"/settings/browsers/{row.id}/forget", page="/settings", headers=HX).status_code == 404
    assert len(remembered(engine)) == 1


def test_max_days_is_enforced(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    """The cookie and the row last the policy's days; lowering the maximum, or turning the policy off,
    shortens or ends browsers remembered before."""
    set_policy(engine, days="30")
    sign_in_remembering(auth, member_with_totp)
    with open_session(engine) as session:
        for row in session.exec(select(RememberedBrowser)):
            row.created_at -= timedelta(days=3)  # remembered three days ago
            session.add(row)
        session.commit()
    assert skips_second_step(auth, member_with_totp)
    set_policy(engine, days="2")
    assert not skips_second_step(auth, member_with_totp)
    set_policy(engine, days="30", agents=False)
    assert not skips_second_step(auth, member_with_totp)
    with open_session(engine) as session:
        session.execute(update(RememberedBrowser).values(expires_at=col(RememberedBrowser.created_at)))
        session.commit()
    set_policy(engine, days="30")
    assert not skips_second_step(auth, member_with_totp), "an expired browser skips nothing"


@pytest.mark.parametrize("days", ["0", "91", "x", "-1"])
def test_team_policy_form_refuses_bad_days(auth: Auth, admin: Member, days: str) -> None:
    auth.login(admin)
    page = auth.client.get("/team").text
    for name in ("Allow remembering browsers for admins", "Allow remembering browsers for agents"):
        assert name in page
    assert "Remember browsers for at most" in page
    data = {"remember_agents": "1", "remember_days": days}
    response = auth.post("/team/policy", data, page="/team", headers=HX)
    assert response.status_code == 422 and 'id="remember_days-error"' in response.text


def test_team_policy_form_saves_remembering(auth: Auth, admin: Member, engine: Engine) -> None:
    auth.login(admin)
    data = {"remember_agents": "1", "remember_days": "14"}
    assert auth.post("/team/policy", data, page="/team").status_code == 303
    with open_session(engine) as session:
        policy = org.get_policy(session)
    assert (policy.remember_admins, policy.remember_agents, policy.remember_days) == (False, True, 14)

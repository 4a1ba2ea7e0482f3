"""Sign-in: password, second step, sign-out, set-up link; each checked as a browser and as htmx sees it."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select
from starlette.testclient import TestClient

from db import links, users
from db.engine import open_session
from db.errors import InvalidCredentials
from db.models import SecurityEvent
from tests.conftest import PASSWORD, Auth, Member, csrf_of, use_cookie
from web.cookies import SECURE_NAME


def _without_token(html: str) -> str:
    html = re.sub(r'"challenge": "[A-Za-z0-9_-]+"', '"challenge": ""', html)  # each page's passkey challenge
    return re.sub(r'value="[A-Za-z0-9_-]{43}"', 'value=""', html)


def test_login_page_has_the_contract_controls(client: TestClient) -> None:
    html = client.get("/login").text
    assert '<label for="email">Email</label>' in html
    assert '<label for="password">Password</label>' in html
    assert ">Sign in</button>" in html


def test_sign_in_without_mfa_lands_signed_in_with_a_sidebar(auth: Auth, member: Member, client: TestClient) -> None:
    response = auth.password(member, next_path="/settings")
    assert response.status_code == 303
    assert response.headers["location"] == "/settings"
    page = client.get("/settings")
    assert page.status_code == 200
    assert page.template.name == "account/settings.html"  # type: ignore[attr-defined]
    assert '<nav aria-label="Sidebar"' in page.text
    assert ">Settings</a>" in page.text
    assert "<h1>Settings</h1>" in page.text


def test_unknown_email_and_wrong_password_read_the_same(auth: Auth, member: Member) -> None:
    wrong = auth.post("/login", {"email": member.email, "password": "not the password at all"})
    unknown = auth.post("/login", {"email": "nobody@example.com", "password": "not the password at all"})
    assert wrong.status_code == unknown.status_code == 422
    assert InvalidCredentials.message in wrong.text
    assert _without_token(wrong.text).replace(member.email, "X") == _without_token(unknown.text).replace(
        "nobody@example.com", "X"
    )
    assert ("set-cookie" in wrong.headers) == ("set-cookie" in unknown.headers)


def test_login_error_is_tied_to_the_fields(auth: Auth, member: Member) -> None:
    html = auth.post("/login", {"email": member.email, "password": "not the password at all"}).text
    assert 'id="password-error"' in html
    assert re.search(r'id="password"[^>]*aria-invalid="true"[^>]*aria-describedby="password-error"', html)
    assert re.search(r'id="email"[^>]*aria-invalid="true"', html)


def test_sign_in_rotates_the_session_and_the_old_cookie_stays_anonymous(
    auth: Auth, member: Member, client: TestClient
) -> None:
    client.get("/login")
    anonymous = client.cookies.get(SECURE_NAME)
    assert anonymous
    auth.password(member)
    signed_in = client.cookies.get(SECURE_NAME)
    assert signed_in and signed_in != anonymous
    use_cookie(client, anonymous)
    assert client.get("/settings").status_code == 303


def test_password_only_session_reaches_nothing_behind_sign_in(
    auth: Auth, member_with_totp: Member, client: TestClient
) -> None:
    response = auth.password(member_with_totp)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login/verify")
    for path in ["/", "/settings", "/settings/mfa/totp", "/activity", "/settings?section=mfa"]:
        plain = client.get(path)
        assert plain.status_code == 303 and plain.headers["location"] == "/login/verify", path
        htmx = client.get(path, headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["HX-Redirect"] == "/login/verify", path
        assert member_with_totp.email not in htmx.text
    token = csrf_of(client.get("/login/verify").text)
    enable = client.post("/settings/mfa/totp/enable", data={"csrf_token": token})
    assert enable.status_code == 303 and enable.headers["location"] == "/login/verify"


def test_second_step_with_authenticator_code(auth: Auth, member_with_totp: Member, client: TestClient) -> None:
    auth.password(member_with_totp)
    page = client.get("/login/verify")
    assert "<h1>Two-step verification</h1>" in page.text
    assert '<label for="code">Authentication code</label>' in page.text
    assert "Use a backup code</a>" in page.text
    response = auth.post("/login/verify", {"code": member_with_totp.fresh_code()}, page="/login/verify")
    assert response.status_code == 303
    assert client.get("/settings").status_code == 200


def test_second_step_refuses_a_code_already_used(auth: Auth, member_with_totp: Member, client: TestClient) -> None:
    auth.password(member_with_totp)
    code = member_with_totp.fresh_code()
    assert auth.post("/login/verify", {"code": code}, page="/login/verify").status_code == 303
    auth.logout()
    auth.password(member_with_totp)
    again = auth.post("/login/verify", {"code": code}, page="/login/verify")
    assert again.status_code == 422
    assert "Incorrect code" in again.text
    assert client.get("/settings").status_code == 303


def test_second_step_accepts_one_step_of_drift(auth: Auth, member_with_totp: Member) -> None:
    member_with_totp.clock.advance(3)
    auth.password(member_with_totp)
    late = member_with_totp.code(offset=-1)
    assert auth.post("/login/verify", {"code": late}, page="/login/verify").status_code == 303


def test_second_step_refuses_two_steps_of_drift(auth: Auth, member_with_totp: Member) -> None:
    member_with_totp.clock.advance(3)
    auth.password(member_with_totp)
    early = member_with_totp.code(offset=2)
    assert auth.post("/login/verify", {"code": early}, page="/login/verify").status_code == 422


def test_second_step_with_a_backup_code_once(auth: Auth, member_with_totp: Member, client: TestClient) -> None:
    code = member_with_totp.codes[0]  # type: ignore[index]
    auth.password(member_with_totp)
    page = client.get("/login/verify?method=backup")
    assert '<label for="backup_code">Backup code</label>' in page.text
    data = {"method": "backup", "backup_code": code.lower().replace("-", " ")}
    assert auth.post("/login/verify", data, page="/login/verify").status_code == 303
    auth.logout()
    auth.password(member_with_totp)
    again = auth.post("/login/verify", {"method": "backup", "backup_code": code}, page="/login/verify")
    assert again.status_code == 422
    assert "Incorrect backup code" in again.text


def test_second_step_expires(auth: Auth, member_with_totp: Member, client: TestClient, app) -> None:  # noqa: ANN001
    auth.password(member_with_totp)
    token = csrf_of(client.get("/login/verify").text)
    object.__setattr__(app.state.settings, "second_step_ttl", -1)
    response = client.post("/login/verify", data={"csrf_token": token, "code": member_with_totp.fresh_code()})
    assert response.status_code == 422
    assert "took too long" in response.text


def test_next_is_only_ever_a_local_path(auth: Auth, member: Member) -> None:
    for evil in ["https://evil.example", "//evil.example", "/\\evil.example", "%2F%2Fevil.example", "/%5Cevil.example"]:
        response = auth.password(member, next_path=evil)
        assert response.headers["location"] == "/", evil
        auth.logout()


def test_sign_out_is_a_post_and_kills_the_cookie(auth: Auth, member: Member, client: TestClient) -> None:
    auth.login(member)
    old = client.cookies.get(SECURE_NAME)
    assert client.get("/logout").status_code == 405
    assert client.get("/settings").status_code == 200
    response = auth.post("/logout", page="/settings")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    use_cookie(client, old)  # type: ignore[arg-type]
    replay = client.get("/settings")
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login")


def test_a_tampered_cookie_is_an_anonymous_session(auth: Auth, member: Member, client: TestClient) -> None:
    auth.login(member)
    value = client.cookies.get(SECURE_NAME)
    assert value
    use_cookie(client, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert client.get("/settings").status_code == 303


def test_sign_in_is_logged(auth: Auth, member: Member, engine) -> None:  # noqa: ANN001
    auth.post("/login", {"email": member.email, "password": "not the password at all"})
    auth.login(member)
    with open_session(engine) as session:
        kinds = [(e.kind, e.outcome) for e in session.exec(select(SecurityEvent).order_by(SecurityEvent.id))]
    assert ("sign_in_failed", "failure") in kinds
    assert ("sign_in", "success") in kinds


def test_empty_instance_points_to_the_setup_link(client: TestClient) -> None:
    assert "one-time set-up link" in client.get("/login").text


def test_setup_link_creates_the_first_admin_once(client: TestClient, engine) -> None:  # noqa: ANN001
    with open_session(engine) as session:
        token = links.issue_setup_token(session)
    assert token
    assert client.get("/setup/not-the-token").status_code == 404
    page = client.get(f"/setup/{token}")
    assert page.status_code == 200
    weak = client.post(
        f"/setup/{token}", data={"csrf_token": csrf_of(page.text), "email": "a@b.co", "password": "short"}
    )
    assert weak.status_code == 422 and "at least 15" in weak.text
    data = {"csrf_token": csrf_of(page.text), "email": "boss@example.com", "password": PASSWORD}
    assert client.post(f"/setup/{token}", data=data).status_code == 303
    assert client.post(f"/setup/{token}", data=data).status_code == 404
    with open_session(engine) as session:
        boss = users.find_user(session, email="boss@example.com")
        assert boss is not None and boss.role == "admin"
        assert links.issue_setup_token(session) is None


@pytest.mark.parametrize("path", ["/", "/settings", "/settings/mfa/totp", "/team", "/activity"])
def test_anonymous_requests_go_to_sign_in(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    htmx = client.get(path, headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/login")


def test_change_password_signs_out_other_sessions(auth: Auth, member: Member, client: TestClient, app) -> None:  # noqa: ANN001
    auth.login(member)
    other = TestClient(app, base_url="https://testserver", follow_redirects=False)
    Auth(other, auth.engine, auth.settings).login(member)
    assert other.get("/settings").status_code == 200
    wrong = auth.post(
        "/settings/password", {"current_password": "nope", "new_password": "another long passphrase"}, page="/settings"
    )
    assert wrong.status_code == 422 and re.search(r'id="current_password"[^>]*aria-invalid="true"', wrong.text)
    weak = auth.post(
        "/settings/password", {"current_password": member.password, "new_password": "short"}, page="/settings"
    )
    assert weak.status_code == 422 and "at least 15" in weak.text
    new = "a completely different passphrase"
    changed = auth.post(
        "/settings/password", {"current_password": member.password, "new_password": new}, page="/settings"
    )
    assert changed.status_code == 303
    assert "Your password was changed" in client.get(changed.headers["location"]).text
    assert other.get("/settings").status_code == 303
    auth.logout()
    member.password = new
    auth.login(member)

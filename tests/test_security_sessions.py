"""Sessions (security requirements 21-26): cookie attributes, a new cookie at every privilege step, server-side
idle and absolute timeouts, logout and revocation of a cookie that is still validly signed."""

from __future__ import annotations

import json
import time
from base64 import b64decode
from collections.abc import Iterator
from pathlib import Path

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import Engine, func
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from db.engine import open_session
from db.models import AuthSession, SecurityEvent
from tests.conftest import Auth, Clock, Member, csrf_of, make_settings
from web.app import create_app
from web.config import Settings

COOKIE = "__Host-chat360_session"
PLAIN = "chat360_session"
HX = {"HX-Request": "true", "HX-Request-Type": "partial"}


def cookie_attrs(response: object, name: str = COOKIE) -> dict[str, str]:
    """The attributes of the Set-Cookie header for `name` (lower-case keys; flags map to "")."""
    for header in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        first, *attrs = [p.strip() for p in header.split(";")]
        if first.split("=", 1)[0] == name:
            parsed = {"value": first.split("=", 1)[1]}
            for attr in attrs:
                key, _, value = attr.partition("=")
                parsed[key.lower()] = value
            return parsed
    raise AssertionError(f"no Set-Cookie for {name}")


def payload(value: str) -> dict[str, object]:
    return json.loads(b64decode(value.split(".")[0]))


def use_cookie(client: TestClient, value: str | None) -> None:
    """Put a copied cookie back into the jar, as an attacker replaying it would."""
    client.cookies.clear()
    if value:
        client.cookies.set(COOKIE, value, domain="testserver.local")


def cookie(client: TestClient) -> str:
    value = client.cookies.get(COOKIE)
    assert value
    return value


def sessions_of(engine: Engine, member: Member) -> int:
    with open_session(engine) as session:
        return session.exec(select(func.count()).where(AuthSession.user_id == member.user.id)).one()


def goes_to_login(response: object) -> bool:
    return response.status_code == 303 and response.headers["location"].startswith("/login?")  # type: ignore[attr-defined]


def check_attributes(attrs: dict[str, str], *, secure: bool, max_age: int = 86400) -> None:
    assert "httponly" in attrs
    assert attrs.get("samesite", "").lower() in ("lax", "strict")
    assert attrs.get("path") == "/"
    assert "domain" not in attrs
    assert 0 <= int(attrs["max-age"]) <= max_age
    assert ("secure" in attrs) is secure


def test_cookie_attributes_over_https(auth: Auth, member_with_totp: Member) -> None:
    """Rule 24: HttpOnly, SameSite=Lax, Path=/, no Domain, Secure and a `__Host-` name over HTTPS, Max-Age
    within the absolute lifetime, and under 4096 bytes at every stage (sign-in, pending enrolment, logout)."""
    client = auth.client
    stages = [("anonymous", client.get("/login")), ("password", auth.password(member_with_totp))]
    stages.append(
        ("verified", auth.post("/login/verify", {"code": member_with_totp.fresh_code()}, page="/login/verify"))
    )
    for label, response in stages:
        attrs = cookie_attrs(response)
        check_attributes(attrs, secure=True)
        assert int(attrs["max-age"]) > 0, label
        assert len(response.headers["set-cookie"]) < 4096, label
    logout = auth.post("/logout", page="/settings")
    attrs = cookie_attrs(logout)
    check_attributes(attrs, secure=True)
    assert attrs["max-age"] == "0" and attrs["value"] == ""
    assert all(h.startswith(COOKIE + "=") for h in logout.headers.get_list("set-cookie"))


def test_pending_enrolment_keeps_the_cookie_small(auth: Auth, member: Member) -> None:
    """Rule 24: the sealed pending secret rides in the cookie; it must stay far below 4096 bytes."""
    auth.login(member)
    response = auth.post("/settings/mfa/totp/enable", page="/settings")
    attrs = cookie_attrs(response)
    assert "mfa.pending" in payload(attrs["value"])
    assert len(response.headers["set-cookie"]) < 4096


def test_cookie_over_plain_http_is_not_secure(app: Starlette, auth: Auth, member: Member) -> None:
    """Rule 24 / section 4: over plain http (local runs) the cookie drops Secure and the `__Host-` prefix,
    which browsers would refuse without Secure; everything else stays."""
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as client:
        response = client.get("/login")
        attrs = cookie_attrs(response, PLAIN)
        check_attributes(attrs, secure=False)
        assert COOKIE not in response.headers["set-cookie"]
        token = csrf_of(response.text)
        signed_in = client.post(
            "/login", data={"csrf_token": token, "email": member.email, "password": member.password}
        )
        assert signed_in.status_code == 303
        check_attributes(cookie_attrs(signed_in, PLAIN), secure=False)
        assert client.get("/settings").status_code == 200


def test_max_age_never_exceeds_the_absolute_lifetime(tmp_path: Path, engine: Engine, clock: Clock) -> None:
    """Rule 24: a browser drops the cookie no later than the server would end the session."""
    app = create_app(make_settings(tmp_path, absolute_timeout=600, totp_clock=clock), engine)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        assert int(cookie_attrs(client.get("/login"))["max-age"]) <= 600


def test_a_new_cookie_at_every_privilege_step(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    """Rule 21: anonymous → password → second factor → step-up each issue a different cookie, and the signed-in
    session token changes at step-up, so a cookie copied before a step is worth no more than it was."""
    client, member = auth.client, member_with_totp
    client.cookies.clear()
    client.get("/login")
    anonymous = cookie(client)
    assert auth.password(member).headers["location"].startswith("/login/verify")
    password_only = cookie(client)
    response = auth.post("/login/verify", {"code": member.fresh_code()}, page="/login/verify")
    assert response.status_code == 303
    verified = cookie(client)
    step_up = auth.post(
        "/reauth",
        {
            "reauth_factor": "totp",
            "reauth_secret": member.fresh_code(),
            "reauth_method": "GET",
            "reauth_next": "/settings",
        },
        page="/settings",
    )
    assert step_up.status_code == 303 and step_up.headers["location"] == "/settings"
    stepped_up = cookie(client)
    values = [anonymous, password_only, verified, stepped_up]
    assert len(set(values)) == 4
    assert payload(anonymous).get("csrf") != payload(verified).get("csrf"), "the CSRF token survived sign-in"
    assert payload(verified)["auth.sid"] != payload(stepped_up)["auth.sid"]
    assert client.get("/settings").status_code == 200

    use_cookie(client, anonymous)
    assert goes_to_login(client.get("/settings"))
    use_cookie(client, verified)  # the session token before step-up was rotated away
    assert goes_to_login(client.get("/settings"))
    use_cookie(client, stepped_up)
    assert client.get("/settings").status_code == 200
    assert sessions_of(engine, member) == 1


def test_password_only_cookie_never_reaches_a_signed_in_page(auth: Auth, engine: Engine) -> None:
    """Rule 22: with only the password step passed, every page, partial, download and POST answers a 303 to
    the second step (401 + HX-Redirect for htmx) and shows no data; replaying that cookie after the full
    sign-in changes nothing."""
    admin = auth.create("admin@example.com", "admin")
    auth.login(admin)
    auth.enable_totp(admin)
    auth.logout()
    auth.password(admin)
    password_only = cookie(auth.client)
    auth.post("/login/verify", {"code": admin.fresh_code()}, page="/login/verify")
    use_cookie(auth.client, password_only)
    client = auth.client
    token = csrf_of(client.get("/login/verify").text)
    pages = ["/", "/settings", "/settings?section=mfa", "/settings/mfa/totp", "/settings/webhooks"]
    pages += ["/settings/billing", "/team", "/activity", "/activity.csv", "/reauth"]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/login/verify", path
        assert admin.email not in response.text, path
        partial = client.get(path, headers=HX)
        assert partial.status_code == 401 and partial.headers.get("hx-redirect") == "/login/verify", path
        assert admin.email not in partial.text, path
    for path in (
        "/settings/mfa/totp/enable",
        "/settings/mfa/backup-codes/regenerate",
        "/settings/sessions/revoke",
        "/team/policy",
    ):
        response = client.post(path, data={"csrf_token": token, "require_admins": "1"})
        assert response.status_code == 303 and response.headers["location"] == "/login/verify", path
        response = client.post(path, data={"require_admins": "1"}, headers=HX | {"X-CSRF-Token": token})
        assert response.status_code == 401 and response.headers.get("hx-redirect") == "/login/verify", path
    assert sessions_of(engine, admin) == 1  # the earlier, complete sign-in only


def test_logout_is_post_only_and_kills_the_cookie(auth: Auth, member: Member, engine: Engine) -> None:
    """Rule 26: GET /logout is 405 and harmless; POST with the token ends the session on the server, so the
    copied cookie is dead afterwards."""
    auth.login(member)
    copied = cookie(auth.client)
    assert auth.client.get("/logout").status_code == 405
    assert auth.client.get("/settings").status_code == 200
    response = auth.post("/logout", page="/settings")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert "cache" in response.headers.get("clear-site-data", "")
    assert sessions_of(engine, member) == 0
    with open_session(engine) as session:
        logged = session.exec(select(SecurityEvent).where(SecurityEvent.kind == "sign_out")).all()
    assert [e.actor_id for e in logged] == [member.user.id], "rule 38: the sign-out names who signed out"
    use_cookie(auth.client, copied)
    assert goes_to_login(auth.client.get("/settings"))
    assert goes_to_login(auth.client.get("/"))


@pytest.fixture
def second(app: Starlette, auth: Auth, engine: Engine) -> Iterator[Auth]:
    """Another browser (cookie jar J2) on the same app."""
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield Auth(client, engine, auth.settings)


def test_sign_out_other_sessions_ends_them(auth: Auth, second: Auth, member: Member, engine: Engine) -> None:
    """Rule 23: "Sign out other sessions" revokes every other browser's cookie; this one continues, and
    another member's sessions are untouched."""
    other = auth.create("other@example.com", "agent")
    auth.login(member)
    second.login(member)
    with TestClient(auth.client.app, base_url="https://testserver", follow_redirects=False) as third_client:
        third = Auth(third_client, engine, auth.settings)
        third.login(other)
        response = auth.post("/settings/sessions/revoke", page="/settings")
        assert response.status_code == 200 and "Signed out of 1 other session" in response.text
        assert goes_to_login(second.client.get("/settings"))
        assert auth.client.get("/settings").status_code == 200
        assert third.client.get("/settings").status_code == 200
    assert sessions_of(engine, member) == 1


def test_mfa_changes_end_other_sessions_and_rotate_this_one(
    auth: Auth, second: Auth, member: Member, engine: Engine
) -> None:
    """Rule 23: enabling MFA, regenerating backup codes and disabling MFA in J1 each sign J2 out at once,
    while J1 continues on a new cookie (its old value is dead)."""
    auth.login(member)
    second.login(member)
    changes = []

    def change(label: str, act: object) -> None:
        assert second.client.get("/settings").status_code == 200, label
        before = cookie(auth.client)
        act()  # type: ignore[operator]
        assert goes_to_login(second.client.get("/settings")), f"J2 still signed in after {label}"
        assert auth.client.get("/settings").status_code == 200, label
        changes.append((label, before, cookie(auth.client)))
        second.client.cookies.clear()
        second.login(member)

    change("enable", lambda: auth.enable_totp(member))
    change("regenerate", lambda: auth.post("/settings/mfa/backup-codes/regenerate", page="/settings"))
    change("disable", lambda: auth.post("/settings/mfa/totp/disable", {"code": member.fresh_code()}, page="/settings"))

    for label, old, new in changes:
        assert payload(old)["auth.sid"] != payload(new)["auth.sid"], label
        use_cookie(second.client, old)
        assert goes_to_login(second.client.get("/settings")), f"J1's cookie from before {label} still works"
    assert sessions_of(engine, member) == 2  # J1 and J2's last sign-in


def test_password_change_ends_other_sessions_and_rotates_this_one(
    auth: Auth, second: Auth, member: Member, engine: Engine
) -> None:
    """Rule 23: changing the password in J1 signs J2 out; J1 continues on a new session token."""
    auth.login(member)
    second.login(member)
    before = cookie(auth.client)
    new = "an entirely new passphrase 42"
    response = auth.post(
        "/settings/password", {"current_password": member.password, "new_password": new}, page="/settings"
    )
    assert response.status_code == 303
    assert goes_to_login(second.client.get("/settings"))
    assert auth.client.get("/settings").status_code == 200
    assert payload(before)["auth.sid"] != payload(cookie(auth.client))["auth.sid"]
    use_cookie(second.client, before)
    assert goes_to_login(second.client.get("/settings"))
    assert sessions_of(engine, member) == 1


def timed_app(tmp_path: Path, engine: Engine, clock: Clock, **limits: int) -> tuple[Starlette, Settings]:
    settings = make_settings(tmp_path, totp_clock=clock, **limits)
    return create_app(settings, engine), settings


def test_idle_timeout_is_enforced_on_the_server(tmp_path: Path, engine: Engine, clock: Clock) -> None:
    """Rule 25: past the idle limit the next request must sign in again, and the server has ended the
    session (the cookie is still validly signed and unexpired: only server state can refuse it)."""
    app, settings = timed_app(tmp_path, engine, clock, idle_timeout=1)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, settings)
        member = auth.create()
        auth.login(member)
        copied = cookie(client)
        assert client.get("/settings").status_code == 200
        time.sleep(1.1)  # the idle limit is 1 s
        TimestampSigner(settings.secret_key, salt="chat360.session").unsign(copied, max_age=settings.absolute_timeout)
        assert goes_to_login(client.get("/settings"))
        assert sessions_of(engine, member) == 0
        use_cookie(client, copied)
        assert goes_to_login(client.get("/settings"))


def test_absolute_lifetime_is_enforced_while_active(tmp_path: Path, engine: Engine, clock: Clock) -> None:
    """Rule 25: activity keeps re-signing the cookie, but the session still ends at the absolute limit,
    because the server checks when the member signed in, not the cookie's own timestamp."""
    app, settings = timed_app(tmp_path, engine, clock, idle_timeout=3, absolute_timeout=2)
    signer = TimestampSigner(settings.secret_key, salt="chat360.session")
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, settings)
        member = auth.create()
        auth.login(member)
        started = time.monotonic()
        first = cookie(client)
        while True:
            sent = cookie(client)
            response = client.get("/settings")
            if response.status_code != 200:
                break
            assert time.monotonic() - started < 4, "the session outlived its absolute limit"
            time.sleep(0.2)  # activity while the absolute limit (2 s) runs out
        elapsed = time.monotonic() - started
        assert goes_to_login(response)
        assert elapsed >= 0.9, f"ended after {elapsed:.1f} s, before the absolute limit"
        assert sent != first, "the cookie was never re-signed: this would not show a server-side limit"
        signer.unsign(sent, max_age=settings.absolute_timeout)  # the refused cookie was still validly signed
        assert sessions_of(engine, member) == 0

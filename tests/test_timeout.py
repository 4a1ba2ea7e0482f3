"""The session timeout warning's server side (WCAG 2.2.1): the page tells the script how long is left, and
"Stay signed in" starts the idle clock again, even when the stamp was fresh enough not to be refreshed by an
ordinary request; the absolute lifetime does not move. The browser side is tests/e2e/test_a11y_more.py."""

from __future__ import annotations

import re

from starlette.applications import Starlette

from tests.conftest import Auth, Member
from tests.test_sessions_list import age_cookie

FETCH = {"X-Requested-With": "fetch"}


def timer(html: str, name: str) -> int:
    found = re.search(rf'data-{name}="(\d+)"', html)
    assert found, f"no data-{name} on the page"
    return int(found.group(1))


def test_signed_in_pages_carry_the_time_left_and_the_warning(auth: Auth, member: Member) -> None:
    login = auth.client.get("/login").text
    assert "data-idle-left" not in login and "timeout-warning" not in login, "nobody is signed in"
    auth.login(member)
    page = auth.client.get("/settings").text
    assert auth.settings.idle_timeout - 2 <= timer(page, "idle-left") <= auth.settings.idle_timeout
    assert timer(page, "idle-warning") == auth.settings.idle_warning
    assert 'role="alertdialog"' in page and "Stay signed in" in page
    assert "<script>" not in page, "no inline script (CSP)"


def test_stay_signed_in_restarts_the_idle_clock(auth: Auth, member: Member, app: Starlette) -> None:
    auth.login(member)
    age_cookie(auth, app, 30)  # fresh enough that a page does not refresh the stamp
    before = auth.client.get("/settings").text
    assert timer(before, "idle-left") <= auth.settings.idle_timeout - 29
    response = auth.post("/session/extend", page="/settings", headers=FETCH)
    assert response.status_code == 204
    after = auth.client.get("/settings").text
    assert timer(after, "idle-left") >= auth.settings.idle_timeout - 5, "the idle clock starts again"
    assert timer(after, "session-left") <= timer(before, "session-left"), "the absolute lifetime does not move"


def test_stay_signed_in_without_javascript_returns_to_the_page(auth: Auth, member: Member) -> None:
    auth.login(member)
    response = auth.post("/session/extend", {"next": "/settings"}, page="/settings")
    assert response.status_code == 303 and response.headers["location"] == "/settings"
    elsewhere = auth.post("/session/extend", {"next": "https://evil.example/"}, page="/settings")
    assert elsewhere.headers["location"] == "/"


def test_a_session_that_has_ended_is_not_extended(auth: Auth, member: Member, app: Starlette) -> None:
    auth.login(member)
    token = auth.token("/settings")
    age_cookie(auth, app, auth.settings.idle_timeout + 1)
    response = auth.client.post("/session/extend", data={"csrf_token": token}, headers=FETCH)
    assert response.status_code in (303, 401) and "/login" in response.headers["location"]
    assert auth.client.get("/settings").status_code == 303, "still signed out"


def test_extending_needs_the_csrf_token(auth: Auth, member: Member) -> None:
    auth.login(member)
    assert auth.client.post("/session/extend", headers=FETCH).status_code == 403

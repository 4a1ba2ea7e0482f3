"""Settings › Sessions: every signed-in session in words, "This session", "Sign out" for each other one
(it ends at its next request, and is logged), pending sign-ins not listed, last activity written at most
once a minute so a page stays one SQL statement."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, event
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from db.engine import open_session
from db.models import AuthSession, SecurityEvent
from tests.conftest import Auth, Member
from web.cookies import SECURE_NAME, CookieSession
from web.signed_in import SEEN

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
HX = {"HX-Request": "true", "HX-Request-Type": "partial"}


@pytest.fixture
def second(app: Starlette, auth: Auth, engine: Engine) -> Iterator[Auth]:
    """Another browser (its own cookie jar) on the same app, running Firefox on Windows."""
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        client.headers["user-agent"] = FIREFOX
        yield Auth(client, engine, auth.settings)


@pytest.fixture
def chrome(auth: Auth) -> Auth:
    auth.client.headers["user-agent"] = CHROME
    return auth


def session_ids(engine: Engine, member: Member) -> list[int]:
    with open_session(engine) as session:
        rows = session.exec(select(AuthSession.id).where(AuthSession.user_id == member.user.id))
        return sorted(i for i in rows if i is not None)


def other_id(engine: Engine, member: Member, user_agent: str) -> int:
    with open_session(engine) as session:
        row = session.exec(select(AuthSession).where(AuthSession.user_agent == user_agent)).one()
        assert row.user_id == member.user.id and row.id
        return row.id


def test_settings_lists_sessions_in_words(chrome: Auth, second: Auth, member: Member) -> None:
    chrome.login(member)
    second.login(member)
    page = chrome.client.get("/settings").text
    assert "Chrome on Linux" in page and "Firefox on Windows" in page
    assert page.count("This session") == 1
    assert re.search(r"<caption>[^<]+</caption>", page), "the table has a caption"
    assert "testclient" in page, "the IP address is shown"
    # The one other session has a button named for it; this one has none.
    assert re.search(r">Sign out<span class=\"visually-hidden\"> Firefox on Windows at testclient</span>", page)
    assert page.count(">Sign out<span") == 1
    row = re.search(r"<th scope=\"row\">Chrome on Linux</th>(.*?)</tr>", page, re.S)
    assert row and "This session" in row.group(1) and "UTC" in row.group(1)


@pytest.mark.parametrize("headers", [{}, HX], ids=["plain", "htmx"])
def test_sign_out_session_ends_it_on_its_next_request(
    chrome: Auth, second: Auth, member: Member, engine: Engine, headers: dict[str, str]
) -> None:
    chrome.login(member)
    second.login(member)
    assert second.client.get("/settings").status_code == 200
    target = other_id(engine, member, FIREFOX)
    response = chrome.post(f"/settings/sessions/{target}/sign-out", page="/settings", headers=headers)
    if headers:
        assert response.status_code == 200 and response.template.name == "account/_sessions.html"  # type: ignore[attr-defined]
        assert "That session was signed out." in response.text and "Firefox on Windows" not in response.text
    else:
        assert response.status_code == 303 and response.headers["location"] == "/settings?sessions=ended"
        page = chrome.client.get(response.headers["location"]).text
        assert "That session was signed out." in page and "Firefox on Windows" not in page
    ended = second.client.get("/settings")
    assert ended.status_code == 303 and ended.headers["location"].startswith("/login?")
    assert chrome.client.get("/settings").status_code == 200
    with open_session(engine) as session:
        logged = session.exec(select(SecurityEvent).where(SecurityEvent.kind == "session_ended")).all()
    assert [(e.actor_id, e.target_id, e.detail) for e in logged] == [
        (member.user.id, member.user.id, f"session={target}")
    ]


def test_sign_out_session_refuses_this_one_and_other_members(
    chrome: Auth, second: Auth, member: Member, engine: Engine
) -> None:
    other = chrome.create("other@example.com")
    chrome.login(member)
    second.login(other)
    mine, theirs = session_ids(engine, member)[0], session_ids(engine, other)[0]
    for target in (mine, theirs):
        response = chrome.post(f"/settings/sessions/{target}/sign-out", page="/settings", headers=HX)
        assert response.status_code == 404 and "already gone" in response.text
    assert second.client.get("/settings").status_code == 200
    assert chrome.client.get("/settings").status_code == 200


def test_pending_sign_ins_are_not_listed(chrome: Auth, second: Auth, member_with_totp: Member) -> None:
    chrome.login(member_with_totp)
    assert second.password(member_with_totp).headers["location"].startswith("/login/verify")
    page = chrome.client.get("/settings").text
    assert "Firefox on Windows" not in page and "Chrome on Linux" in page


def test_sign_out_other_sessions_still_ends_them_all(chrome: Auth, second: Auth, member: Member) -> None:
    chrome.login(member)
    second.login(member)
    response = chrome.post("/settings/sessions/revoke", page="/settings", headers=HX)
    assert response.status_code == 200 and "Signed out of 1 other session" in response.text
    assert "Firefox on Windows" not in response.text
    assert second.client.get("/settings").status_code == 303


def statements(engine: Engine, client: TestClient, path: str, **kw: object) -> int:
    seen: list[str] = []

    def count(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        assert client.get(path, **kw).status_code == 200  # type: ignore[arg-type]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def last_seen(engine: Engine, member: Member) -> object:
    with open_session(engine) as session:
        return session.exec(select(AuthSession.last_seen_at).where(AuthSession.user_id == member.user.id)).one()


def age_cookie(auth: Auth, app: Starlette, seconds: int) -> None:
    """Move the cookie's own last-activity stamp into the past, as if the member had been idle (no sleep)."""
    signer = CookieSession(app, secret_key=auth.settings.secret_key, max_age=auth.settings.absolute_timeout)
    data = signer.load(auth.client.cookies.get(SECURE_NAME))
    data[SEEN] = int(time.time()) - seconds
    value = signer.cookie(SECURE_NAME, data, {"scheme": "https"}).split(";")[0].split("=", 1)[1]
    auth.client.cookies.set(SECURE_NAME, value, domain="testserver.local", path="/")


def test_last_active_is_written_at_most_once_a_minute(
    chrome: Auth, member: Member, engine: Engine, app: Starlette
) -> None:
    chrome.login(member)
    before = last_seen(engine, member)
    assert statements(engine, chrome.client, "/settings") == 1, "Settings, with its lists, is one statement"
    assert statements(engine, chrome.client, "/settings?section=mfa", headers=HX) == 1
    assert statements(engine, chrome.client, "/") == 2  # the dashboard reads its notices
    assert last_seen(engine, member) == before, "no write while the cookie's stamp is fresh"
    age_cookie(chrome, app, 61)
    assert statements(engine, chrome.client, "/settings") == 2, "the load, and the once-a-minute write"
    moved = last_seen(engine, member)
    assert moved > before  # type: ignore[operator]
    assert statements(engine, chrome.client, "/settings") == 1
    assert last_seen(engine, member) == moved

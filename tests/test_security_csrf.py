"""CSRF (security requirements 27 and 28): every unsafe request needs this session's token, sent in the form
body or the `X-CSRF-Token` header, from the same origin; GET and HEAD never change state.

The POST routes are read from `web.routes.routes()`, so a route added later is covered without editing this file.
"""

from __future__ import annotations

import json
import re
from base64 import b64decode

import pytest
from sqlalchemy import Engine
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, select
from starlette.routing import Route
from starlette.testclient import TestClient

from db import links, sensitive
from db.engine import open_session
from db.events import OPERATOR
from db.models import SecurityEvent, User
from tests.conftest import PASSWORD, Auth, Member
from web.app import keyring_for
from web.routes import routes

COOKIE = "__Host-chat360_session"
TOKEN_EXPIRED = "Your form expired"
OTHER_SITE = "came from another site"
POST_ROUTES = [r for r in routes() if isinstance(r, Route) and "POST" in (r.methods or ())]
GET_PATHS = {r.path for r in routes() if isinstance(r, Route) and "GET" in (r.methods or ())}


def snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table but the security log (a refusal is logged, nothing else may change)."""
    with engine.connect() as conn:
        return {
            table.name: [tuple(row) for row in conn.execute(sa_select(table).order_by(*table.primary_key.columns))]
            for table in SQLModel.metadata.sorted_tables
            if table.name != "security_event"
        }


def session_of(client: TestClient) -> dict[str, object]:
    raw = client.cookies.get(COOKIE)
    return json.loads(b64decode(raw.split(".")[0])) if raw else {}


def token_of(client: TestClient) -> str:
    """This client's CSRF token, made by rendering a page if the session has none yet."""
    for path in ("/settings", "/login"):
        token = session_of(client).get("csrf")
        if isinstance(token, str):
            return token
        client.get(path)
    token = session_of(client).get("csrf")
    assert isinstance(token, str), "no CSRF token in the session"
    return token


class World:
    """A signed-in admin (MFA on, freshly verified), a second member signed in elsewhere, and one object of
    each kind a route can name: member id, webhook id, set-password link."""

    def __init__(self, auth: Auth, app: object, engine: Engine) -> None:
        self.auth, self.client, self.engine = auth, auth.client, engine
        self.admin = auth.create("admin@example.com", "admin")
        auth.login(self.admin)
        auth.enable_totp(self.admin)
        self.agent = auth.create("agent@example.com", "agent")
        with open_session(engine) as session:
            hook, _ = sensitive.add_webhook(
                session, url="https://93.184.215.14/a", keyring=keyring_for(auth.settings), actor=OPERATOR
            )
            self.hook_id = hook.id
            invited = session.get(User, self.agent.user.id)
            self.link = links.issue_set_password_link(session, user=invited)  # type: ignore[arg-type]
        self.other = TestClient(app, base_url="https://testserver", follow_redirects=False)  # type: ignore[arg-type]
        Auth(self.other, engine, auth.settings).login(self.agent)
        self.other_token = token_of(self.other)

    def path(self, route: Route) -> str:
        row = str(self.hook_id if "webhooks" in route.path else self.agent.user.id)
        path = re.sub(r"\{id(:\w+)?\}", row, route.path).replace("{token}", self.link)
        assert "{" not in path, f"unfilled path parameter in {route.path}"
        return path

    def data(self, route: Route) -> dict[str, str]:
        """Fields that would make the request succeed if it got through."""
        data = {
            "email": "new-member@example.com",
            "password": PASSWORD,
            "code": self.admin.code(),
            "url": "https://hooks.example/b",
            "billing_email": "billing@example.com",
            "plan": "team",
            "role": "admin",
            "require_agents": "1",
            "reason": "csrf test",
            "enabled": "0",
            "reauth_secret": self.admin.code(),
            "reauth_factor": "totp",
            "current_password": PASSWORD,
            "new_password": "an entirely new passphrase 42",
        }
        if route.path == "/login":
            data["email"] = self.admin.email
        return data


@pytest.fixture
def world(auth: Auth, app: object, engine: Engine) -> World:
    made = World(auth, app, engine)
    yield made  # type: ignore[misc]
    made.other.close()


def test_routes_under_test_are_the_apps_post_routes() -> None:
    """Guards the enumeration itself: if it found nothing, every parametrised check below would be empty."""
    names = {r.name for r in POST_ROUTES}
    assert {"sign_in", "verify_second_step", "sign_out", "confirm_totp", "unlock_member", "reset_mfa"} <= names
    assert len(POST_ROUTES) >= 20


ATTACKS = {
    # name: (form fields to add, extra headers, query string, expected message)
    "no token": (lambda w: {}, {}, "", TOKEN_EXPIRED),
    "another session's token": (lambda w: {"csrf_token": w.other_token}, {}, "", TOKEN_EXPIRED),
    "another session's token in the header": (
        lambda w: {},
        lambda w: {"HX-Request": "true", "X-CSRF-Token": w.other_token},
        "",
        TOKEN_EXPIRED,
    ),
    "token only in the query string": (lambda w: {}, {}, "csrf_token={token}", TOKEN_EXPIRED),
    "htmx request without a token": (lambda w: {}, {"HX-Request": "true"}, "", TOKEN_EXPIRED),
    "empty token": (lambda w: {"csrf_token": ""}, {}, "", TOKEN_EXPIRED),
    "valid token, Sec-Fetch-Site cross-site": (
        lambda w: {"csrf_token": "{token}"},
        {"Sec-Fetch-Site": "cross-site"},
        "",
        OTHER_SITE,
    ),
    "valid token, Sec-Fetch-Site same-site": (
        lambda w: {"csrf_token": "{token}"},
        {"Sec-Fetch-Site": "same-site"},
        "",
        OTHER_SITE,
    ),
    "valid token, foreign Origin": (
        lambda w: {"csrf_token": "{token}"},
        {"Origin": "https://evil.example"},
        "",
        OTHER_SITE,
    ),
    "valid token, Origin null": (lambda w: {"csrf_token": "{token}"}, {"Origin": "null"}, "", OTHER_SITE),
    "valid token, http Origin of this host": (
        lambda w: {"csrf_token": "{token}"},
        {"Origin": "http://testserver"},
        "",
        OTHER_SITE,
    ),
}


def test_forged_posts_are_refused_and_change_nothing(world: World, engine: Engine) -> None:
    """Rules 27/28: every POST route answers 403 to each kind of forged request (no token, another session's
    token, the token only in the query string, htmx without a token, a valid token from another site or
    origin) and leaves every table as it was; only `csrf_refused` entries are logged."""
    client = world.client
    token = token_of(client)
    before = snapshot(engine)
    with open_session(engine) as session:
        last_event = max([e.id or 0 for e in session.exec(select(SecurityEvent)).all()], default=0)
    for attack, (fields, headers, query, message) in ATTACKS.items():
        for route in POST_ROUTES:
            data = world.data(route) | {k: v.format(token=token) for k, v in fields(world).items()}
            extra = headers(world) if callable(headers) else headers
            url = world.path(route) + ("?" + query.format(token=token) if query else "")
            response = client.post(url, data=data, headers=extra)
            assert response.status_code == 403, f"{attack}: POST {route.path} gave {response.status_code}"
            assert message in response.text, f"{attack}: {route.path}"
            assert "set-cookie" not in response.headers, f"{attack}: {route.path}"
    assert snapshot(engine) == before
    with open_session(engine) as session:
        kinds = {e.kind for e in session.exec(select(SecurityEvent)).all() if (e.id or 0) > last_event}
    assert kinds == {"csrf_refused"}
    # The admin's own session is untouched by all of it.
    assert client.get("/settings").status_code == 200


def test_valid_token_passes_the_guard_on_every_route(world: World) -> None:
    """The control for the test above: the same requests with this session's token (in the body, or in the
    header for htmx) and same-origin metadata are not refused as forged. /logout runs last."""
    client = world.client
    ordered = sorted(POST_ROUTES, key=lambda r: (r.path in ("/logout", "/login"), r.path == "/logout"))
    for i, route in enumerate(ordered):
        token = token_of(client)
        origin = {"Origin": "https://testserver", "Sec-Fetch-Site": "same-origin"}
        if i % 2:
            response = client.post(world.path(route), data=world.data(route), headers=origin | {"X-CSRF-Token": token})
        else:
            response = client.post(world.path(route), data=world.data(route) | {"csrf_token": token}, headers=origin)
        assert response.status_code != 403 or TOKEN_EXPIRED not in response.text, route.path
        unrouted = response.status_code == 405 or "There is nothing at this address" in response.text
        assert not unrouted, f"{route.path}: the URL under test does not reach the route"
        assert OTHER_SITE not in response.text, route.path


def test_sign_in_without_a_token_is_refused_and_starts_no_session(client: TestClient, member: Member) -> None:
    """Rule 27 (CSRF in login forms): a cross-site form can't sign the victim into the attacker's account."""
    response = client.post("/login", data={"email": member.email, "password": member.password})
    assert response.status_code == 403
    assert not {"auth.sid", "login.user"} & set(session_of(client)), "a refused sign-in left a session behind"
    response = client.post(
        "/login", data={"email": member.email, "password": member.password, "csrf_token": token_of(client)}
    )
    assert response.status_code == 303


def test_login_token_from_another_browser_is_refused(app: object, client: TestClient, member: Member) -> None:
    """Rule 27: the token is bound to the session that received it, not merely well-formed."""
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as attacker:  # type: ignore[arg-type]
        stolen = token_of(attacker)
    token_of(client)
    response = client.post("/login", data={"email": member.email, "password": member.password, "csrf_token": stolen})
    assert response.status_code == 403


MUTATING_ONLY = sorted({r.path for r in POST_ROUTES} - GET_PATHS)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_get_and_head_on_mutating_urls_are_405(world: World, engine: Engine, method: str) -> None:
    """Rule 27: GET never changes state. URLs that only exist to change something answer 405."""
    assert "/logout" in MUTATING_ONLY and len(MUTATING_ONLY) >= 12
    before = snapshot(engine)
    for path in MUTATING_ONLY:
        fake = Route(path, lambda r: None)
        url = world.path(fake) + "?csrf_token=" + token_of(world.client)
        response = world.client.request(method, url)
        assert response.status_code == 405, f"{method} {path}: {response.status_code}"
        assert "POST" in response.headers.get("allow", ""), path
    assert snapshot(engine) == before
    assert world.client.get("/settings").status_code == 200


def test_get_on_every_page_changes_no_table(world: World, engine: Engine) -> None:
    """Rule 27: visiting any page (with what would be a mutation's fields in the query) changes nothing."""
    before = snapshot(engine)
    for path in sorted(GET_PATHS):
        url = world.path(Route(path, lambda r: None)) + "?enabled=0&role=admin&require_agents=1&action=disable"
        response = world.client.get(url)
        assert response.status_code < 500, path
    after = snapshot(engine)
    # Visiting pages may refresh the session's last-seen time, nothing else.
    assert {k: v for k, v in after.items() if k != "auth_session"} == {
        k: v for k, v in before.items() if k != "auth_session"
    }
    assert len(after["auth_session"]) == len(before["auth_session"])

"""Section K of the security requirements: invariants across features (40-42, 44-46), each shown by
combining two features the way an attacker would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import SQLModel, select
from starlette.routing import Route
from starlette.testclient import TestClient

from db import org
from db.engine import make_engine, open_session
from db.errors import DomainError
from db.events import OPERATOR
from db.models import AuthSession, OrgPolicy, SecurityEvent, User
from db.users import create_user
from tests.conftest import PASSWORD, PG_URL, Auth, Member, use_cookie
from web.app import hasher_for
from web.config import Settings
from web.cookies import SECURE_NAME
from web.routes import routes

HX = {"HX-Request": "true"}
STALE = 901  # seconds: past the default re-authentication window


@pytest.fixture
def admin_with_totp(auth: Auth, admin: Member) -> Member:
    auth.login(admin)
    auth.enable_totp(admin)
    return admin


def test_a_password_change_does_not_count_as_confirm_its_you(auth: Auth, admin_with_totp: Member) -> None:
    """Rule 40: changing the password (with the current one) is no second-factor check."""
    auth.age_sessions(STALE)
    new = "an entirely different passphrase"
    changed = auth.post("/settings/password", {"current_password": PASSWORD, "new_password": new}, page="/settings")
    assert changed.status_code == 303
    assert auth.client.get("/settings/webhooks").headers["location"] == "/reauth?next=/settings/webhooks"


def _snapshot(engine: Engine) -> tuple[object, ...]:
    with open_session(engine) as session:
        users = sorted((u.id, u.email, u.role, u.password_hash) for u in session.exec(select(User)))
        policy = session.get(OrgPolicy, 1)
        events = session.exec(select(func.count()).select_from(SecurityEvent)).one()
        return users, policy and policy.model_dump(), events


def _admin_mutations() -> list[Route]:
    found = [r for r in routes() if isinstance(r, Route) and "POST" in (r.methods or ())]
    found = [r for r in found if getattr(r.endpoint, "guard", None) is not None and r.endpoint.guard.admin]
    return found


def test_every_admin_area_route_is_declared_admin() -> None:
    """Rule 41: a route under the admin area that forgets `@guarded(admin=True)` fails here."""
    admin_area = ("/team", "/settings/webhooks", "/settings/billing")
    for route in routes():
        if isinstance(route, Route) and route.path.startswith(admin_area):
            guard = getattr(route.endpoint, "guard", None)
            assert guard is not None and guard.admin, f"{route.path} is not declared admin"
            assert guard.needs_step_up("POST"), f"{route.path} changes things without step-up"
    assert len(_admin_mutations()) >= 10


@pytest.mark.parametrize("htmx", [False, True])
def test_every_admin_change_with_a_stale_check_asks_first_and_changes_nothing(
    auth: Auth, admin_with_totp: Member, member: Member, engine: Engine, htmx: bool
) -> None:
    """Rule 41: walk the router; with a check older than the window every state-changing admin route answers
    "Confirm it's you" and changes nothing."""
    auth.age_sessions(STALE)
    fields = {
        "email": "new@example.com",
        "role": "admin",
        "require_agents": "1",
        "grace_days": "3",
        "url": "https://93.184.215.14/x",
        "plan": "team",
        "billing_email": "b@example.com",
        "enabled": "0",
    }
    for route in _admin_mutations():
        path = route.path.replace("{id:rowid}", str(member.user.id))
        before = _snapshot(engine)
        response = auth.post(path, fields, page="/settings", headers=HX if htmx else {})
        assert response.status_code == 200, (path, response.status_code)
        assert "Confirm it&#39;s you" in response.text or "Confirm it's you" in response.text, path
        assert _snapshot(engine) == before, f"{path} changed something before the member confirmed"


def _demote_both(engine: Engine, ids: list[int]) -> list[str]:
    outcomes: list[str] = []
    barrier = threading.Barrier(len(ids))

    def demote(target: int, actor_id: int) -> None:
        with open_session(engine) as session:
            barrier.wait()
            try:
                org.change_role(session, user_id=target, role="agent", actor=OPERATOR)
                outcomes.append("demoted")
            except DomainError as error:
                outcomes.append(type(error).__name__)

    threads = [threading.Thread(target=demote, args=(i, i)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


@pytest.fixture
def race_engine(tmp_path: Path, engine: Engine) -> Iterator[Engine]:
    """A database other connections can really race on: the PostgreSQL of the run, else a SQLite file."""
    racing = make_engine(PG_URL or f"sqlite:///{tmp_path / 'race.db'}")
    if not PG_URL:
        SQLModel.metadata.create_all(racing)
    yield racing
    racing.dispose()


def test_parallel_demotions_always_leave_an_admin(race_engine: Engine, settings: Settings) -> None:
    """Rule 42: the only two admins demoted at once, 20 times: one admin is always left, nothing else fails."""
    hasher = hasher_for(settings)
    for round_ in range(20):
        with open_session(race_engine) as session:
            ids = [
                create_user(
                    session,
                    email=f"a{round_}-{n}@example.com",
                    role="admin",
                    password=PASSWORD,
                    hasher=hasher,
                    actor=OPERATOR,
                ).id
                or 0
                for n in range(2)
            ]
            for user in session.exec(select(User).where(User.id.notin_(ids))):  # type: ignore[union-attr]
                user.role = "agent"
                session.add(user)
            session.commit()
        outcomes = _demote_both(race_engine, ids)
        assert sorted(outcomes) == ["LastAdmin", "demoted"], outcomes
        with open_session(race_engine) as session:
            admins = session.exec(select(func.count()).select_from(User).where(User.role == "admin")).one()
        assert admins == 1


def test_a_pending_second_step_dies_when_the_password_changes(auth: Auth, member_with_totp: Member, app) -> None:  # noqa: ANN001
    """Rule 44: a stolen password starts a sign-in; the owner changes the password elsewhere; the thief's
    pending second step is gone, even with a valid code."""
    assert auth.password(member_with_totp).headers["location"].startswith("/login/verify")
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as owner_client:
        owner = Auth(owner_client, auth.engine, auth.settings)
        owner.login(member_with_totp)
        new = "the owner's new long passphrase"
        body = {"current_password": PASSWORD, "new_password": new}
        assert owner.post("/settings/password", body, page="/settings").status_code == 303
    response = auth.post("/login/verify", {"code": member_with_totp.fresh_code()}, page="/login/verify")
    assert response.status_code == 422 and "Sign in again" in response.text
    assert auth.client.get("/settings").status_code == 303


def test_a_pending_second_step_dies_when_an_admin_resets_mfa(
    auth: Auth,
    member_with_totp: Member,
    admin: Member,
    app,  # noqa: ANN001
) -> None:
    assert auth.password(member_with_totp).headers["location"].startswith("/login/verify")
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as admin_client:
        boss = Auth(admin_client, auth.engine, auth.settings)
        boss.login(admin)
        assert boss.post(f"/team/{member_with_totp.user.id}/reset-mfa", page="/team").status_code == 303
    response = auth.post("/login/verify", {"code": member_with_totp.fresh_code()}, page="/login/verify")
    assert response.status_code == 422 and "Sign in again" in response.text


def test_signing_in_again_ends_the_earlier_session(auth: Auth, member: Member, engine: Engine) -> None:
    """Rule 45: a second sign-in over a live session ends the first, so an old copy of its cookie is dead."""
    auth.login(member)
    earlier = auth.client.cookies.get(SECURE_NAME) or ""
    body = {"email": member.email, "password": member.password, "next": "/"}
    assert auth.post("/login", body, page="/settings").status_code == 303  # the sign-in form, posted again
    with open_session(engine) as session:
        assert session.exec(select(func.count()).select_from(AuthSession)).one() == 1
    use_cookie(auth.client, earlier)
    assert auth.client.get("/settings").status_code == 303


def test_saving_the_policy_again_keeps_the_grace_period(auth: Auth, admin: Member, engine: Engine) -> None:
    """The grace period runs from when the policy began to require MFA, not from the last save."""
    auth.login(admin)
    body = {"require_agents": "1", "grace_days": "7"}
    assert auth.post("/team/policy", body, page="/team").status_code == 303
    with open_session(engine) as session:
        first = session.get(OrgPolicy, 1)
        assert first is not None and first.agents_since is not None
        since = first.agents_since
    assert auth.post("/team/policy", body | {"require_admins": "1"}, page="/team").status_code == 303
    with open_session(engine) as session:
        again = session.get(OrgPolicy, 1)
        assert again is not None and again.agents_since == since and again.admins_since is not None

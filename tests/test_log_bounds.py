"""Anonymous traffic cannot fill the security log (requirement 49): repeats are counted, old rows pruned."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from db import events
from db.clock import now
from db.engine import make_engine, open_session
from db.events import OPERATOR
from db.models import SecurityEvent
from tests.conftest import Auth, Member
from web import cli

FORGED = {"Origin": "https://evil.example"}


def _rows(engine: Engine, *kinds: str) -> list[SecurityEvent]:
    with open_session(engine) as session:
        return list(session.exec(select(SecurityEvent).where(SecurityEvent.kind.in_(kinds))))  # type: ignore[attr-defined]


def test_forged_posts_from_one_address_are_counted_not_logged_each(client: TestClient, engine: Engine) -> None:
    for _ in range(200):
        assert client.post("/login", data={"email": "a@example.com"}, headers=FORGED).status_code == 403
    rows = _rows(engine, "csrf_refused")
    assert 1 <= len(rows) <= 3
    assert sum(1 + row.repeats for row in rows) == 200


def test_failed_sign_ins_for_unknown_emails_are_bounded(auth: Auth, engine: Engine) -> None:
    token = auth.token("/login")
    for n in range(60):
        auth.client.post("/login", data={"csrf_token": token, "email": f"nobody{n}@example.com", "password": "x"})
    rows = _rows(engine, "sign_in_failed", "throttled")
    assert len(rows) <= 4
    assert sum(1 + row.repeats for row in rows) >= 60


def test_a_members_events_are_not_merged_into_anonymous_ones(auth: Auth, member: Member, engine: Engine) -> None:
    """Failures against a known member keep a row of their own; signed-in actions are never merged."""
    token = auth.token("/login")
    for email in ("nobody@example.com", member.email, member.email):
        auth.client.post("/login", data={"csrf_token": token, "email": email, "password": "wrong"})
    rows = _rows(engine, "sign_in_failed")
    assert {(row.target_id, row.repeats) for row in rows} == {(None, 0), (member.user.id, 1)}


def test_activity_page_tells_how_many_there_were(auth: Auth, client: TestClient, engine: Engine) -> None:
    admin = auth.create("admin@example.com", "admin")
    for _ in range(5):
        client.post("/logout", headers=FORGED)
    auth.login(admin)
    assert "(and 4 more like it within 10 minutes)" in client.get("/activity").text


def test_a_new_window_starts_a_new_row(engine: Engine) -> None:
    anonymous = events.Actor(None, "", "203.0.113.9")
    with open_session(engine) as session:
        events.record(session, "csrf_refused", actor=anonymous, outcome="failure")
        session.commit()
        old = session.exec(select(SecurityEvent)).one()
        old.at = now() - events.BOUND_WINDOW - timedelta(seconds=1)
        session.add(old)
        session.commit()
        events.record(session, "csrf_refused", actor=anonymous, outcome="failure")
        session.commit()
    assert [row.repeats for row in _rows(engine, "csrf_refused")] == [0, 0]


def _age(engine: Engine, days: int) -> None:
    with open_session(engine) as session:
        events.record(session, "policy_changed", actor=OPERATOR, detail=f"{days} days old")
        session.commit()
        row = session.exec(select(SecurityEvent).order_by(SecurityEvent.id.desc())).first()  # type: ignore[union-attr]
        assert row is not None
        row.at = now() - timedelta(days=days)
        session.add(row)
        session.commit()


def test_prune_deletes_only_entries_past_retention(engine: Engine) -> None:
    _age(engine, 401)
    _age(engine, 399)
    with open_session(engine) as session:
        assert events.prune(session, older_than_days=400) == 1
    assert [row.detail for row in _rows(engine, "policy_changed")] == ["399 days old"]


def test_cli_events_prune_uses_event_retention_days(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("EVENT_RETENTION_DAYS", "30")
    assert cli.main(["migrate"]) == 0
    engine = make_engine(url)
    _age(engine, 31)
    _age(engine, 29)
    assert cli.main(["events", "prune"]) == 0
    assert [row.detail for row in _rows(engine, "policy_changed")] == ["29 days old"]
    engine.dispose()

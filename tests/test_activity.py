"""Security activity: each member sees their own events, admins see all with filters and a CSV export;
entries carry who, whom, where from and never a secret."""

from __future__ import annotations

import csv
import io

from sqlalchemy import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from db.engine import open_session
from db.models import SecurityEvent
from tests.conftest import Auth, Member


def test_members_see_only_their_own_events(auth: Auth, admin: Member, member: Member, client: TestClient) -> None:
    auth.login(admin)
    auth.logout()
    auth.login(member)
    html = client.get("/activity").text
    assert member.email in html and admin.email not in html
    assert "<h1>Security activity</h1>" in html
    assert client.get(f"/activity?member={admin.user.id}").text.count(admin.email) == 0


def test_admins_filter_by_member_kind_and_date(auth: Auth, admin: Member, member: Member, client: TestClient) -> None:
    auth.login(member)
    auth.logout()
    auth.login(admin)
    everyone = client.get("/activity").text
    assert member.email in everyone and admin.email in everyone
    only = client.get(f"/activity?member={member.user.id}&kind=sign_in", headers={"HX-Request": "true"})
    assert only.template.name == "admin/_activity.html"  # type: ignore[attr-defined]
    assert member.email in only.text and "Signed in" in only.text
    assert admin.email not in only.text.split("<tbody>")[1]
    assert "No events match" in client.get("/activity?date=2001-01-01").text
    assert client.get("/activity?date=not-a-date&kind=<script>").status_code == 200


def test_csv_export_neutralises_formulas(auth: Auth, admin: Member, client: TestClient) -> None:
    auth.post("/login", {"email": "=HYPERLINK(1)@example.com", "password": "not the password at all"})
    auth.login(admin)
    response = client.get("/activity.csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["Cache-Control"] == "no-store"
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:3] == ["time_utc", "event", "outcome"]
    targets = [row[4] for row in rows[1:]]
    assert "'=hyperlink(1)@example.com" in targets


def test_events_name_actor_ip_and_agent_but_no_codes(auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    auth.enable_totp(member)
    with open_session(engine) as session:
        rows = list(session.exec(select(SecurityEvent)))
    enabled = [e for e in rows if e.kind == "mfa_enabled"][0]
    assert enabled.actor_label == member.email and enabled.target_label == member.email
    assert enabled.ip and enabled.user_agent
    dump = " ".join(f"{e.actor_label} {e.target_label} {e.detail}" for e in rows)
    assert member.secret not in dump
    assert not any(code in dump for code in member.codes or [])
    assert member.password not in dump


def test_an_email_with_line_breaks_is_one_escaped_entry(auth: Auth, admin: Member, client: TestClient) -> None:
    auth.post("/login", {"email": "x@example.com\r\nFAKE entry", "password": "not the password at all"})
    auth.login(admin)
    html = client.get("/activity?kind=sign_in_failed").text
    assert "x@example.com\\r\\nfake entry" in html
    assert "\nfake entry" not in html.lower().replace("\\n", "")

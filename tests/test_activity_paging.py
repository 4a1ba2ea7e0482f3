"""Security activity a page at a time: 50 newest first, keyset links ("Older events", "Newer events") that
keep the filters, device names and relative times, the admins' chart with its text equivalent, and a first
page that stays at a fixed number of SQL statements with 100,000 events in the log."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert
from starlette.testclient import TestClient

from db.clock import now
from db.engine import open_session
from db.models import SecurityEvent
from tests.conftest import Auth, Member
from tests.statements import counted
from web.activity import relative_time

HX = {"HX-Request": "true"}
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
_LINK = re.compile(r'<a href="([^"]+)"[^>]*>(Older|Newer) events</a>')


def seed(engine: Engine, member: Member, count: int, *, kind: str = "step_up", ua: str = CHROME) -> None:
    """`count` events of the member's, one second apart, in one bulk insert (one executemany)."""
    start = now() - timedelta(seconds=count)
    rows = [
        {
            "at": start + timedelta(seconds=i),
            "kind": kind,
            "outcome": "success",
            "actor_id": member.user.id,
            "actor_label": member.email,
            "target_id": member.user.id,
            "target_label": member.email,
            "ip": "203.0.113.7",
            "user_agent": ua,
            "detail": f"n={i}",
            "repeats": 0,
        }
        for i in range(count)
    ]
    with open_session(engine) as session:
        session.execute(insert(SecurityEvent), rows)
        session.commit()


def links(html: str) -> dict[str, str]:
    return {name: href.replace("&amp;", "&") for href, name in _LINK.findall(html)}


def numbers(html: str) -> list[int]:
    return [int(n) for n in re.findall(r"<td><span lang=\"en\" dir=\"ltr\">n=(\d+)</span></td>", html)]


def test_pages_of_fifty_newest_first(auth: Auth, member: Member, client: TestClient, engine: Engine) -> None:
    auth.login(member)
    seed(engine, member, 120)
    first = client.get("/activity?kind=step_up").text
    assert numbers(first) == list(range(119, 69, -1))
    assert set(links(first)) == {"Older"}
    second = client.get(links(first)["Older"]).text
    assert numbers(second) == list(range(69, 19, -1))
    assert set(links(second)) == {"Older", "Newer"}
    third = client.get(links(second)["Older"]).text
    assert numbers(third) == list(range(19, -1, -1)) and set(links(third)) == {"Newer"}
    back = client.get(links(third)["Newer"]).text
    assert numbers(back) == numbers(second)
    assert numbers(client.get(links(back)["Newer"]).text) == numbers(first)  # the newest page, full


def test_paging_links_keep_the_filters(auth: Auth, member: Member, client: TestClient, engine: Engine) -> None:
    auth.login(member)
    seed(engine, member, 60)
    day = now().strftime("%Y-%m-%d")
    html = client.get(f"/activity?kind=step_up&date={day}").text
    older = links(html)["Older"]
    assert "kind=step_up" in older and f"date={day}" in older and "before=" in older
    assert numbers(client.get(older).text) == list(range(9, -1, -1))


def test_paging_with_htmx_answers_the_table(auth: Auth, member: Member, client: TestClient, engine: Engine) -> None:
    auth.login(member)
    seed(engine, member, 60)
    first = client.get("/activity?kind=step_up", headers=HX)
    assert first.template.name == "admin/_activity.html"  # type: ignore[attr-defined]
    assert 'hx-target="#activity"' in first.text
    older = client.get(links(first.text)["Older"], headers=HX)
    assert older.template.name == "admin/_activity.html"  # type: ignore[attr-defined]
    assert numbers(older.text) == list(range(9, -1, -1))


def test_bad_paging_parameters_are_ignored(auth: Auth, member: Member, client: TestClient) -> None:
    auth.login(member)
    for query in ("before=abc", "before=-1", "after=99999999999999999999", "before=0"):
        assert client.get(f"/activity?{query}").status_code == 200


def test_devices_in_words_and_times_relative(auth: Auth, member: Member, client: TestClient, engine: Engine) -> None:
    auth.login(member)
    seed(engine, member, 1)
    html = client.get("/activity").text
    assert "Chrome on Linux" in html
    stamp = re.search(r'<time datetime="([^"]+)" title="([^"]+) UTC" data-exact="[^"]+" tabindex="0">([^<]+)<', html)
    assert stamp, html
    assert stamp.group(3) in ("just now", "1 minute ago")
    assert f"({stamp.group(2)} UTC)</span>" in html  # the exact time for screen readers


def test_relative_time_words() -> None:
    at = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert relative_time(at, now=at + timedelta(seconds=30)) == "just now"
    assert relative_time(at, now=at + timedelta(minutes=1)) == "1 minute ago"
    assert relative_time(at, now=at + timedelta(minutes=3, seconds=59)) == "3 minutes ago"
    assert relative_time(at, now=at + timedelta(hours=5)) == "5 hours ago"
    assert relative_time(at, now=at + timedelta(days=2)) == "2 days ago"
    assert relative_time(at, now=at + timedelta(days=45)) == "2026-01-31"


def test_admins_see_a_chart_of_failed_checks_with_a_table(
    auth: Auth, admin: Member, client: TestClient, engine: Engine
) -> None:
    auth.login(admin)
    seed(engine, admin, 4, kind="second_factor_failed")
    html = client.get("/activity").text
    assert '<svg role="img" aria-labelledby="chart-title chart-summary"' in html
    assert html.count('class="bar"') == 30
    assert "4 failed checks in the last 30 days; at most 4 on one day." in html
    today = now().date().isoformat()
    assert f"<tr><td>{today}</td><td>4</td></tr>" in html
    # the chart belongs to the page; an htmx filter answers only the table
    assert "chart-title" not in client.get("/activity?kind=sign_in", headers=HX).text


def test_members_see_no_chart(auth: Auth, member: Member, client: TestClient, engine: Engine) -> None:
    auth.login(member)
    seed(engine, member, 3, kind="second_factor_failed")
    assert "chart-title" not in client.get("/activity").text


def test_first_page_statements_with_100k_events(
    auth: Auth, member: Member, admin: Member, client: TestClient, engine: Engine
) -> None:
    """The member's page: the member row and one page of events (keyset, LIMIT 51). An admin's page reads
    the chart and the member list for the filter in that same statement (two JSON columns); neither grows
    with the log."""
    seed(engine, member, 100_000)
    auth.login(member)
    with counted(engine) as statements:
        response = client.get("/activity")
    assert response.status_code == 200 and numbers(response.text)[:2] == [99_999, 99_998]
    assert len(statements) <= 2, statements
    auth.logout()
    auth.login(admin)
    with counted(engine) as statements:
        assert client.get("/activity").status_code == 200
    assert len(statements) == 2, "\n".join(s[:90] for s in statements)
    assert "json" in statements[1].lower() and "LIMIT" in statements[1], statements[1][:300]

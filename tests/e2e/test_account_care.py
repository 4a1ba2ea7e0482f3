"""Account care in the browser: the backup codes' Copy (JavaScript) and "I have saved my backup codes" (also
without JavaScript) with the print view, the 2FA check-up at sign-in, and the security log's pages. axe runs
at each new state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import insert, select, update

from db.clock import now
from db.engine import make_engine
from db.models import SecurityEvent, TotpDevice, User

from .flows import enrol, expect_accessible, new_member, sidebar_link, sign_in, sign_out
from .support import LiveServer

pytestmark = pytest.mark.e2e

SAVED = "I have saved my backup codes"
REMINDER = "You haven't confirmed that you saved your backup codes"


def _engine(server: LiveServer):  # noqa: ANN202
    return make_engine(server.env["DATABASE_URL"])


def test_copy_print_and_saved_with_javascript(page: Page, live_server: LiveServer) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, new_member(live_server, "care-js"))
    codes = enrol(page).backup_codes
    copy = page.get_by_role("button", name="Copy backup codes")
    copy.click()
    expect(page.get_by_role("status").filter(has_text="Copied the backup codes.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()").split() == codes
    expect(page.get_by_role("button", name="Print backup codes")).to_be_visible()
    expect_accessible(page, "backup codes shown, copied")

    page.emulate_media(media="print")  # the print view: the codes alone
    expect(page.get_by_role("list", name="Your backup codes")).to_be_visible()
    expect(page.get_by_role("navigation", name="Sidebar")).to_be_hidden()
    expect(copy).to_be_hidden()
    page.emulate_media(media="screen")

    sidebar_link(page, "Settings").click()
    page.get_by_role("button", name="Multi-Factor Authentication").click()
    expect(page.get_by_text(REMINDER)).to_be_visible()
    expect_accessible(page, "Settings, backup codes not confirmed as saved")
    page.get_by_role("button", name=SAVED).focus()
    page.keyboard.press("Enter")
    expect(
        page.get_by_role("status").filter(has_text="You confirmed that you saved your backup codes.")
    ).to_be_visible()
    expect(page.get_by_text(REMINDER)).to_have_count(0)
    expect_accessible(page, "Settings, backup codes saved")


def test_saved_without_javascript(page_nojs: Page, live_server: LiveServer) -> None:
    page = page_nojs
    sign_in(page, new_member(live_server, "care-nojs"))
    enrol(page)
    expect(page.get_by_role("button", name="Copy backup codes")).to_be_hidden()  # needs JavaScript
    page.get_by_role("button", name=SAVED).click()
    expect(page.get_by_role("button", name="Regenerate backup codes")).to_be_visible()
    expect(page.get_by_text(REMINDER)).to_have_count(0)
    page.goto("/settings?section=mfa")
    expect(page.get_by_role("button", name=SAVED)).to_have_count(0)


def test_checkup_after_the_days_have_passed(page: Page, live_server: LiveServer) -> None:
    email = new_member(live_server, "checkup")
    sign_in(page, email)
    enrolled = enrol(page)
    sign_out(page)
    engine = _engine(live_server)
    with engine.begin() as conn:  # as if MFA had been on for 30 days
        user_id = conn.execute(select(User.id).where(User.email == email)).scalar_one()
        conn.execute(
            update(TotpDevice).where(TotpDevice.user_id == user_id).values(confirmed_at=now() - timedelta(days=30))
        )
    engine.dispose()
    sign_in(page, email, authenticator=enrolled.authenticator)
    expect(page.get_by_role("heading", name="2FA check-up", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Regenerate backup codes")).to_be_visible()
    expect(page.get_by_role("link", name="add another factor")).to_be_visible()
    expect_accessible(page, "2FA check-up")
    page.get_by_role("button", name="Yes, I still have them").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    sign_out(page)
    sign_in(page, email, authenticator=enrolled.authenticator)
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()  # asked once


def test_activity_pages_and_chart(page: Page, live_server: LiveServer) -> None:
    email = new_member(live_server, "log-admin", role="admin")
    sign_in(page, email)
    engine = _engine(live_server)
    with engine.begin() as conn:
        user_id = conn.execute(select(User.id).where(User.email == email)).scalar_one()
        rows = [
            {
                "at": now() - timedelta(hours=120 - i),
                "kind": "second_factor_failed" if i % 7 == 0 else "step_up",
                "outcome": "success",
                "actor_id": user_id,
                "actor_label": email,
                "target_id": user_id,
                "target_label": email,
                "ip": "203.0.113.9",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) "
                "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
                "detail": f"n={i}",
                "repeats": 0,
            }
            for i in range(120)
        ]
        conn.execute(insert(SecurityEvent), rows)
    engine.dispose()
    page.goto(f"/activity?member={user_id}")
    expect(page.get_by_role("img", name="Failed second-factor checks, last 30 days")).to_be_visible()
    expect(page.get_by_role("cell", name="Chrome on Linux").first).to_be_visible()
    expect_accessible(page, "Security activity with the chart, first page")
    pages = page.get_by_role("navigation", name="Pages of events")
    pages.get_by_role("link", name="Older events").focus()
    page.keyboard.press("Enter")
    expect(pages.get_by_role("link", name="Newer events")).to_be_visible()
    expect(page.get_by_role("cell", name="n=50", exact=True)).to_be_visible()
    expect_accessible(page, "Security activity, second page")
    pages.get_by_role("link", name="Newer events").click()
    expect(page.get_by_role("cell", name="n=119", exact=True)).to_be_visible()
    expect(pages.get_by_role("link", name="Newer events")).to_have_count(0)

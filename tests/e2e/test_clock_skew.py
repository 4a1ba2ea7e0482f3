"""Codes from a clock that is off, in the browser: codes from ``oathtool`` for 2 and 5 minutes away, ahead
and behind, are refused at the second step, and the message says which way and about how much."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from .flows import enrol, expect_accessible, fill_sign_in, new_member, sign_in, sign_out
from .support import LiveServer, totp_at

pytestmark = pytest.mark.e2e


def test_second_step_explains_a_clock_that_is_off(page: Page, live_server: LiveServer) -> None:
    email = new_member(live_server, "skew")
    sign_in(page, email)
    enrolled = enrol(page)
    sign_out(page)
    fill_sign_in(page, email)
    box = page.get_by_role("textbox", name="Authentication code")
    for minutes, words in ((2, "about 2 minutes ahead"), (-5, "about 5 minutes behind")):
        code = totp_at(enrolled.authenticator.secret, datetime.now(UTC) + timedelta(minutes=minutes))
        box.fill(code)
        page.get_by_role("button", name="Verify").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text(re.compile(f"clock seems to be {words}"))
        expect(alert).to_contain_text("automatic date and time")
        expect(box).to_have_attribute("aria-invalid", "true")
        expect_accessible(page, f"second step, code {minutes} minutes away")
    expect(page.get_by_role("navigation", name="Sidebar")).to_have_count(0)  # not signed in
    box.fill(enrolled.authenticator.code())
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("navigation", name="Sidebar")).to_be_visible()

"""Team and policy (issue 3) with JavaScript turned off, on the policy server (the policy is org-wide): the same two
flows as test_policy.py, where every step is an ordinary form post and redirect and "Confirm it's you", when it
comes up, is a page of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .flows import (
    REQUIRE_AGENTS,
    confirm_if_asked,
    enrol,
    expect_reset_logged,
    expect_signed_out,
    fill_sign_in,
    new_member,
    save_agent_policy,
    sidebar_link,
    sign_in,
)
from .support import LiveServer

pytestmark = pytest.mark.e2e

ENROLMENT = re.compile(r"/settings/mfa/totp$")
DASHBOARD = re.compile(r"/$")


def test_required_mfa_sends_agents_to_enrolment_without_javascript(
    page_nojs: Page, new_page: Callable[..., Page], policy_server: LiveServer
) -> None:
    page = page_nojs
    admin = new_member(policy_server, "nojs-policy-admin", role="admin")
    agent = new_member(policy_server, "nojs-policy-agent", role="agent")

    sign_in(page, admin)
    sidebar_link(page, "Team").click()
    expect(page.get_by_role("columnheader", name="MFA", exact=True)).to_be_visible()
    # The policy is org-wide and another test may have left it on: start from off, so that the save below is
    # what switches it on, and leave it as it was found.
    found_on = page.get_by_role("checkbox", name=REQUIRE_AGENTS).is_checked()
    if found_on:
        save_agent_policy(page, False)
    try:
        save_agent_policy(page, True)  # a form post and a redirect back to Team, which shows the stored policy
        expect(page).to_have_url(re.compile(r"/team$"))
        expect(page.get_by_role("checkbox", name="Require MFA for admins")).not_to_be_checked()

        # The agent signs in and lands on enrolment, and nothing else is reachable until it is done.
        member = new_page(javascript=False)
        fill_sign_in(member, agent)
        expect(member).to_have_url(ENROLMENT)
        expect(member.get_by_role("switch", name="Enable")).to_have_attribute("aria-checked", "false")
        for path in ("/", "/settings/webhooks", "/activity", "/settings"):
            member.goto(path)
            expect(member).to_have_url(ENROLMENT)
        sidebar_link(member, "Dashboard").click()
        expect(member).to_have_url(ENROLMENT)
        expect(member.get_by_role("heading", name="Dashboard", level=1)).to_have_count(0)

        enrol(member)  # the switch and Confirm are plain form posts; the QR code is read from a screenshot
        sidebar_link(member, "Dashboard").click()
        expect(member).to_have_url(DASHBOARD)
        expect(member.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
        member.goto("/activity")
        expect(member.get_by_role("heading", name="Security activity", level=1)).to_be_visible()
    finally:
        if not found_on:
            save_agent_policy(page, False)


def test_reset_mfa_ends_the_members_sessions_and_is_logged_without_javascript(
    page_nojs: Page, new_page: Callable[..., Page], policy_server: LiveServer
) -> None:
    page = page_nojs
    admin = new_member(policy_server, "nojs-reset-admin", role="admin")
    email = new_member(policy_server, "nojs-reset-member", role="agent")

    # The member turns MFA on and stays signed in in their own browser (whether or not the policy is on).
    member = new_page(javascript=False)
    fill_sign_in(member, email)
    enrol(member)
    sidebar_link(member, "Dashboard").click()
    expect(member.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()

    sign_in(page, admin)
    sidebar_link(page, "Team").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=email, exact=True))
    expect(row.get_by_role("cell", name="On", exact=True)).to_be_visible()
    with page.expect_navigation():  # a plain form post, then a redirect back to Team
        row.get_by_role("button", name="Reset MFA").click()
    confirm_if_asked(page, row.get_by_role("cell", name="Off", exact=True))
    expect(page).to_have_url(re.compile(r"/team$"))
    expect(row.get_by_role("button", name="Reset MFA")).to_have_count(0)

    expect_signed_out(member)
    expect_reset_logged(page, email=email, admin=admin)

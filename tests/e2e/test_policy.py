"""Team and policy (issue 3), on a server of their own (the policy is org-wide): "Require MFA for agents" sends
an agent without MFA to enrolment and nowhere else until they enrol; "Reset MFA" ends the member's sessions
and shows in "Security activity" with their email."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .flows import (
    confirm_if_asked,
    enrol,
    expect_accessible,
    expect_reset_logged,
    expect_signed_out,
    fill_sign_in,
    new_member,
    sidebar_link,
    sign_in,
)
from .support import LiveServer

pytestmark = pytest.mark.e2e

ENROLMENT = re.compile(r"/settings/mfa/totp$")


def test_required_mfa_sends_agents_to_enrolment(
    page: Page, new_page: Callable[..., Page], policy_server: LiveServer
) -> None:
    admin = new_member(policy_server, "policy-admin", role="admin")
    agent = new_member(policy_server, "policy-agent", role="agent")

    sign_in(page, admin)
    sidebar_link(page, "Team").click()
    expect(page.get_by_role("columnheader", name="MFA", exact=True)).to_be_visible()
    expect_accessible(page, "team page")
    require_agents = page.get_by_role("checkbox", name="Require MFA for agents")
    expect(require_agents).not_to_be_checked()
    require_agents.check()
    page.get_by_role("button", name="Save policy").click()
    saved = page.get_by_role("status").filter(has_text="Saved the security policy")
    confirm_if_asked(page, saved)
    expect(page.get_by_role("checkbox", name="Require MFA for agents")).to_be_checked()
    expect(page.get_by_role("checkbox", name="Require MFA for admins")).not_to_be_checked()

    # The agent signs in and lands on enrolment, and nothing else is reachable until it is done.
    member = new_page()
    fill_sign_in(member, agent)
    expect(member).to_have_url(ENROLMENT)
    expect(member.get_by_role("switch", name="Enable")).to_have_attribute("aria-checked", "false")
    for path in ("/", "/settings/webhooks", "/activity", "/settings"):
        member.goto(path)
        expect(member).to_have_url(ENROLMENT)
    sidebar_link(member, "Dashboard").click()
    expect(member).to_have_url(ENROLMENT)

    enrol(member)
    sidebar_link(member, "Dashboard").click()
    expect(member).to_have_url(re.compile(r"/$"))
    expect(member.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()


def test_reset_mfa_ends_the_members_sessions_and_is_logged(
    page: Page, new_page: Callable[..., Page], policy_server: LiveServer
) -> None:
    admin = new_member(policy_server, "reset-admin", role="admin")
    email = new_member(policy_server, "reset-member", role="agent")

    # The member turns MFA on and stays signed in in their own browser.
    member = new_page()
    sign_in(member, email)
    enrol(member)
    sidebar_link(member, "Dashboard").click()
    expect(member.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()

    sign_in(page, admin)
    sidebar_link(page, "Team").click()
    row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=email, exact=True))
    expect(row.get_by_role("cell", name="On", exact=True)).to_be_visible()
    row.get_by_role("button", name="Reset MFA").click()
    done = page.get_by_role("status").filter(has_text=f"Reset multi-factor authentication for {email}")
    confirm_if_asked(page, done)
    expect(row.get_by_role("cell", name="Off", exact=True)).to_be_visible()
    expect(row.get_by_role("button", name="Reset MFA")).to_have_count(0)

    expect_signed_out(member)
    expect_reset_logged(page, email=email, admin=admin)
    expect_accessible(page, "security activity")

"""Sessions (issue "Account care"): two browsers of one member, each listed in words, "This session" on the
one in hand; "Sign out" on the other ends it at its next request. A remembered browser skips the second
step, never the password, and is forgotten when the password changes. Every new state is axe clean."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .flows import (
    PASSWORD,
    confirm_if_asked,
    enrol,
    expect_accessible,
    expect_signed_out,
    fill_sign_in,
    new_member,
    sign_in,
    sign_out,
)
from .support import LiveServer

pytestmark = pytest.mark.e2e

OTHER_SESSION = re.compile(r"^Sign out .+ at ")  # the row's button, not the top bar's "Sign out"
NEW_PASSWORD = "another horse battery staple"


def sessions_section(page: Page):  # noqa: ANN201
    return page.get_by_role("region", name="Sessions")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_signing_out_another_session_ends_it(
    new_page: Callable[..., Page], live_server: LiveServer, javascript: bool
) -> None:
    email = new_member(live_server, "sessions")
    here, there = new_page(javascript=javascript), new_page()
    sign_in(here, email)
    sign_in(there, email)
    here.goto("/settings")
    section = sessions_section(here)
    expect(section.get_by_role("table", name="Browsers where you are signed in")).to_be_visible()
    expect(section.get_by_role("row").filter(has_text="This session")).to_have_count(1)
    expect(section.get_by_role("rowheader").first).to_have_text(re.compile(r"Chrome on Linux"))
    if javascript:
        expect_accessible(here, "sessions listed")
    button = section.get_by_role("button", name=OTHER_SESSION)
    expect(button).to_have_count(1)
    button.focus()
    here.keyboard.press("Enter")
    expect(here.get_by_role("status").filter(has_text="That session was signed out.")).to_be_visible()
    expect(sessions_section(here).get_by_role("button", name=OTHER_SESSION)).to_have_count(0)
    if javascript:
        expect_accessible(here, "a session signed out")
    expect_signed_out(there)
    here.reload()
    expect(here.get_by_role("heading", name="Settings", level=1)).to_be_visible()


def set_remembering(page: Page, *, allowed: bool, days: str = "7") -> None:
    """As a signed-in admin: "Allow remembering browsers for agents" and its days on Team, saved."""
    page.goto("/team")
    page.get_by_role("checkbox", name="Allow remembering browsers for agents").set_checked(allowed)
    page.get_by_role("textbox", name="Remember browsers for at most").fill(days)
    page.get_by_role("button", name="Save policy").click()
    confirm_if_asked(page, page.get_by_role("status").filter(has_text="Saved the security policy"))
    expect(page.get_by_role("checkbox", name="Allow remembering browsers for agents")).to_be_checked(checked=allowed)


def test_remembered_browser_skips_the_second_step_until_the_password_changes(
    page: Page, new_page: Callable[..., Page], policy_server: LiveServer
) -> None:
    admin = new_member(policy_server, "remember-admin", role="admin")
    agent = new_member(policy_server, "remember-agent")
    sign_in(page, admin)
    set_remembering(page, allowed=True)
    expect_accessible(page, "team page with the remembering policy")
    try:
        member = new_page()
        sign_in(member, agent)
        authenticator = enrol(member).authenticator
        sign_out(member)

        fill_sign_in(member, agent)
        expect(member.get_by_role("heading", name="Two-step verification")).to_be_visible()
        remember = member.get_by_role("checkbox", name="Remember this browser for 7 days")
        expect(remember).not_to_be_checked()
        expect_accessible(member, "second step offering to remember the browser")
        remember.check()
        member.get_by_role("textbox", name="Authentication code").fill(authenticator.code())
        member.get_by_role("button", name="Verify").click()
        expect(member.get_by_role("navigation", name="Sidebar")).to_be_visible()
        sign_out(member)

        sign_in(member, agent)  # the password alone: no second step in this browser
        sign_out(member)
        fill_sign_in(member, agent, "not the password at all")  # but never without the password
        expect(member.get_by_role("button", name="Sign in")).to_be_visible()
        expect(member.get_by_role("navigation", name="Sidebar")).to_have_count(0)
        sign_in(member, agent)
        member.goto("/settings")
        forget = sessions_section(member).get_by_role("button", name=re.compile(r"^Forget "))
        expect(forget).to_have_count(1)
        expect_accessible(member, "a remembered browser listed")

        member.get_by_role("textbox", name="Current password").fill(PASSWORD)
        member.get_by_role("textbox", name="New password").fill(NEW_PASSWORD)
        member.get_by_role("button", name="Change password").click()
        expect(member.get_by_role("status").filter(has_text="Your password was changed")).to_be_visible()
        expect(sessions_section(member).get_by_text("No browser is remembered")).to_be_visible()
        sign_out(member)
        fill_sign_in(member, agent, NEW_PASSWORD)
        expect(member.get_by_role("heading", name="Two-step verification")).to_be_visible()
    finally:
        set_remembering(page, allowed=False, days="30")

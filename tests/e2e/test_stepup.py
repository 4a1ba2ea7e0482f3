"""Sensitive settings behind "Confirm it's you" (issue 3), on a server whose re-authentication window is
STEPUP_WINDOW (2) seconds: the dialog, its focus trap and Escape, Verify, and a webhook added by a request that
was interrupted by the dialog and resumed after it, with JavaScript on and off; agents get a 403 page."""

from __future__ import annotations

import re
import secrets
import time

import pytest
from playwright.sync_api import Page, expect

from .flows import (
    STEPUP_WINDOW,
    Authenticator,
    enrol,
    expect_accessible,
    new_member,
    reauth_dialog,
    sidebar_link,
    sign_in,
)
from .support import LiveServer

pytestmark = pytest.mark.e2e

HOOK = "https://93.184.215.14/hook"  # a public address: the browser tests run without DNS


def _hook() -> str:
    """Webhooks belong to the organisation (every admin of a server sees them): one URL per test."""
    return f"{HOOK}/{secrets.token_hex(3)}"


class FreshCheck:
    """When the member's last second-factor check happened, from the test's side (an upper bound)."""

    def __init__(self) -> None:
        self.at = time.monotonic()

    def now(self) -> None:
        self.at = time.monotonic()

    def let_it_expire(self, page: Page) -> None:
        """Wait until the server's window has passed since the last check.

        This is the one deliberate pause of the suite. The server decides staleness by comparing its own clock
        with the time of the check stored in the session row, and nothing in the page changes when the window
        passes, so there is no condition to wait on. The wait is bounded by STEPUP_WINDOW (plus a small margin)
        and only covers what has not already elapsed since the check (taken after the check's response, so it
        is never earlier than the server's own record of it).
        """
        remaining = self.at + STEPUP_WINDOW + 0.25 - time.monotonic()
        if remaining > 0:
            page.wait_for_timeout(remaining * 1000)


def _admin_with_mfa(page: Page, server: LiveServer, prefix: str) -> tuple[Authenticator, FreshCheck]:
    email = new_member(server, prefix, role="admin")
    sign_in(page, email)
    enrolled = enrol(page)  # answers "Confirm it's you" with the password when the machine was slow
    return enrolled.authenticator, FreshCheck()


def _focus_in_dialog(page: Page) -> bool:
    return page.evaluate("() => document.activeElement !== null && document.activeElement.closest('dialog') !== null")


def test_webhooks_behind_confirm_its_you_with_javascript(page: Page, stepup_server: LiveServer) -> None:
    phone, fresh = _admin_with_mfa(page, stepup_server, "stepup-admin")
    fresh.let_it_expire(page)

    # -- opening Webhooks after the window: the dialog ---------------------------------------------------
    sidebar_link(page, "Settings").click()
    page.get_by_role("navigation", name="Settings sections").get_by_role("link", name="Webhooks").click()
    dialog = reauth_dialog(page)
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-modal", "true")
    assert dialog.evaluate("d => d.matches(':modal')"), "the dialog is not opened as a modal (showModal)"
    code_box = dialog.get_by_role("textbox", name="Authentication code")
    expect(code_box).to_be_focused()
    expect(page.get_by_role("textbox", name="Webhook URL")).to_have_count(0)
    expect_accessible(page, "step-up dialog open")

    # Focus trap: Tab and Shift+Tab go round the dialog's controls and never leave it.
    focusable = dialog.evaluate(
        "d => d.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea').length"
    )
    for key in ["Tab"] * (focusable + 2) + ["Shift+Tab"] * (focusable + 2):
        page.keyboard.press(key)
        assert _focus_in_dialog(page), f"{key} moved focus out of the dialog"

    # Escape closes it (and, since it stood for a page of its own, leaves it).
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible()
    expect(page.get_by_role("textbox", name="Webhook URL")).to_have_count(0)

    # -- again, and Verify -----------------------------------------------------------------------------------
    page.get_by_role("navigation", name="Settings sections").get_by_role("link", name="Webhooks").click()
    expect(dialog).to_be_visible()
    code_box.fill(phone.code())
    dialog.get_by_role("button", name="Verify").click()
    url_box = page.get_by_role("textbox", name="Webhook URL")
    expect(url_box).to_be_visible()
    fresh.now()
    expect(page).to_have_url(re.compile(r"/settings/webhooks$"))
    expect(dialog).to_have_count(0)

    # -- a change whose check went stale while the member was typing -------------------------------------------
    hook = _hook()
    url_box.fill(hook)
    fresh.let_it_expire(page)
    add = page.get_by_role("button", name="Add webhook")
    add.click()
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(code_box).to_be_focused()
    expect_accessible(page, "step-up dialog over the webhooks form")
    # Escape here only dismisses the dialog: the form keeps what was typed and focus returns to the button.
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(url_box).to_have_value(hook)
    expect(add).to_be_focused()
    expect(page.get_by_role("cell", name=hook, exact=True)).to_have_count(0)
    page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    code_box.fill(phone.code())
    dialog.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("cell", name=hook, exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(f"Added a webhook for {hook}")
    expect(dialog).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/settings/webhooks$"))


def test_webhooks_behind_confirm_its_you_without_javascript(page_nojs: Page, stepup_server: LiveServer) -> None:
    page = page_nojs
    phone, fresh = _admin_with_mfa(page, stepup_server, "stepup-nojs")
    fresh.let_it_expire(page)

    sidebar_link(page, "Settings").click()
    page.get_by_role("navigation", name="Settings sections").get_by_role("link", name="Webhooks").click()
    dialog = reauth_dialog(page)
    expect(dialog).to_be_visible()
    expect(page).to_have_url(re.compile(r"/reauth\?next=/settings/webhooks$"))
    dialog.get_by_role("textbox", name="Authentication code").fill(phone.code())
    dialog.get_by_role("button", name="Verify").click()
    url_box = page.get_by_role("textbox", name="Webhook URL")
    expect(url_box).to_be_visible()
    fresh.now()
    expect(page).to_have_url(re.compile(r"/settings/webhooks$"))

    hook = _hook()
    url_box.fill(hook)
    fresh.let_it_expire(page)
    page.get_by_role("button", name="Add webhook").click()
    expect(dialog).to_be_visible()
    expect(page.get_by_role("textbox", name="Webhook URL")).to_have_count(0)
    dialog.get_by_role("textbox", name="Authentication code").fill(phone.code())
    dialog.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("cell", name=hook, exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(f"Added a webhook for {hook}")
    expect(page).to_have_url(re.compile(r"/settings/webhooks$"))


def test_agent_gets_403_not_the_dialog(page: Page, stepup_server: LiveServer) -> None:
    email = new_member(stepup_server, "stepup-agent", role="agent")
    sign_in(page, email)
    sidebar_link(page, "Settings").click()
    sections = page.get_by_role("navigation", name="Settings sections")
    expect(sections.get_by_role("link", name="Security")).to_be_visible()
    expect(sections.get_by_role("link", name="Webhooks")).to_have_count(0)
    expect(sections.get_by_role("link", name="Billing")).to_have_count(0)
    for path in ("/settings/webhooks", "/settings/billing"):
        response = page.goto(path)
        assert response is not None and response.status == 403, path
        expect(page.get_by_role("heading", name="Access denied")).to_be_visible()
        expect(reauth_dialog(page)).to_have_count(0)
        expect(page.get_by_role("textbox", name="Webhook URL")).to_have_count(0)

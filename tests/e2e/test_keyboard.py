"""Enrolment with the keyboard only (JavaScript on): Tab to each control, Enter or Space to press it, type the
code. After each htmx swap focus must stay where the member was (the same control, re-rendered) or move to
the field that needs their input next, never drop to the top of the page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from .flows import QR_NAME, Authenticator, fill_sign_in, new_member, parse_otpauth, read_qr
from .support import LiveServer

pytestmark = pytest.mark.e2e

MAX_TABS = 40


def _focused(locator: Locator) -> bool:
    return locator.evaluate("el => el === document.activeElement")


def _tab_to(page: Page, target: Locator, *, key: str = "Tab") -> int:
    """Press Tab until ``target`` has focus; return how many presses it took (fails after MAX_TABS)."""
    for presses in range(1, MAX_TABS + 1):
        page.keyboard.press(key)
        if _focused(target):
            return presses
    raise AssertionError(f"{target} never received focus after {MAX_TABS} × {key}")


def _focus_is_visible(target: Locator) -> bool:
    """The browser shows a focus indicator (keyboard focus matches :focus-visible and has an outline)."""
    return target.evaluate(
        "el => el.matches(':focus-visible') && getComputedStyle(el).outlineStyle !== 'none'"
        " && parseFloat(getComputedStyle(el).outlineWidth) >= 2"
    )


def _active_description(page: Page) -> str:
    return page.evaluate(
        "() => { const e = document.activeElement; return e ? `${e.tagName.toLowerCase()}#${e.id}` : 'none'; }"
    )


def test_enrol_with_the_keyboard_only(page: Page, live_server: LiveServer) -> None:
    email = new_member(live_server, "keyboard")
    fill_sign_in(page, email)
    expect(page.get_by_role("navigation", name="Sidebar")).to_be_visible()
    page.goto("/settings")

    # The skip link comes first, then the way to the section.
    skip = page.get_by_role("link", name="Skip to main content")
    page.keyboard.press("Tab")
    expect(skip).to_be_focused()

    section = page.get_by_role("button", name="Multi-Factor Authentication")
    _tab_to(page, section)
    assert _focus_is_visible(section), "no visible focus indicator on the section button"
    page.keyboard.press("Enter")
    expect(section).to_have_attribute("aria-expanded", "true")
    # The section was swapped in place: focus is on the (new) button with the same id.
    expect(section).to_be_focused()

    edit = page.get_by_role("button", name="Edit Time-Based OTP Authentication")
    presses = _tab_to(page, edit)
    assert presses <= 3, f"Edit is {presses} Tab presses after the section button"
    page.keyboard.press("Space")
    switch = page.get_by_role("switch", name="Enable")
    expect(switch).to_be_visible()
    expect(edit).to_be_focused()

    _tab_to(page, switch)
    assert _focus_is_visible(switch)
    page.keyboard.press("Space")
    code_box = page.get_by_role("textbox", name="6-digit code")
    expect(page.get_by_role("img", name=QR_NAME)).to_be_visible()
    expect(switch).to_have_attribute("aria-checked", "true")
    # The next thing to do is typing the code: the field takes focus (autofocus in the swapped-in panel).
    expect(code_box).to_be_focused()

    phone = Authenticator(parse_otpauth(read_qr(page))["secret"])
    # A wrong code, submitted with Enter from the field: the field comes back focused, marked invalid.
    page.keyboard.type(phone.wrong_code())
    page.keyboard.press("Enter")
    expect(code_box).to_have_attribute("aria-invalid", "true")
    expect(code_box).to_be_focused()
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type(phone.code())
    confirm = page.get_by_role("button", name="Confirm")
    _tab_to(page, confirm)
    assert _focus_is_visible(confirm)
    page.keyboard.press("Enter")
    status = page.get_by_role("status").filter(has_text="Multi-factor authentication is enabled")
    expect(status).to_be_visible()
    # The Confirm button is gone. Focus must not drop to <body> (a screen reader would start over at the top):
    # it moves to the backup codes the member has to save now.
    where = _active_description(page)
    assert not where.startswith("body"), f"focus dropped to {where} after Confirm"
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_focused()
    download = page.get_by_role("link", name="Download backup codes")
    _tab_to(page, download)
    assert _focus_is_visible(download)

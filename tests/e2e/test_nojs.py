"""The same enrolment with JavaScript turned off: every step is an ordinary link, form or redirect.

Enable, QR code, wrong and right code, backup codes, the second step, and turning MFA off with a current code.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .flows import (
    APP_NAME,
    QR_NAME,
    Authenticator,
    backup_codes_shown,
    fill_sign_in,
    new_member,
    parse_otpauth,
    read_qr,
    secret_bytes,
    setup_key,
    sidebar_link,
    sign_out,
)
from .support import LiveServer

pytestmark = pytest.mark.e2e


def _open_mfa_section(page: Page) -> None:
    sidebar_link(page, "Settings").click()
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible()
    section = page.get_by_role("button", name="Multi-Factor Authentication")
    expect(section).to_have_attribute("aria-expanded", "false")
    with page.expect_navigation():  # a plain GET form: a new page, not a swap
        section.click()
    expect(page.get_by_role("button", name="Multi-Factor Authentication")).to_have_attribute("aria-expanded", "true")


def test_enrol_sign_in_and_disable_without_javascript(page_nojs: Page, live_server: LiveServer) -> None:
    page = page_nojs
    email = new_member(live_server, "nojs")

    fill_sign_in(page, email)
    expect(page.get_by_role("navigation", name="Sidebar")).to_be_visible()
    state = page.get_by_text(re.compile(r"^(On|Off)$"))

    _open_mfa_section(page)
    expect(page.get_by_text("Time-Based OTP Authentication", exact=True).first).to_be_visible()
    expect(state).to_have_text("Off")

    with page.expect_navigation():
        page.get_by_role("button", name="Edit Time-Based OTP Authentication").click()
    switch = page.get_by_role("switch", name="Enable")
    expect(switch).to_have_attribute("aria-checked", "false")
    with page.expect_navigation():
        switch.click()

    uri = parse_otpauth(read_qr(page))
    assert uri["label"] == f"{APP_NAME}:{email}" and uri["issuer"] == APP_NAME
    assert len(secret_bytes(uri["secret"])) >= 20
    assert setup_key(page) == uri["secret"]
    expect(page.get_by_role("switch", name="Enable")).to_have_attribute("aria-checked", "true")
    expect(state).to_have_text("Off")
    phone = Authenticator(uri["secret"])

    code_box = page.get_by_role("textbox", name="6-digit code")
    code_box.fill(phone.wrong_code())
    page.get_by_role("button", name="Confirm").click()
    expect(code_box).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("img", name=QR_NAME)).to_be_visible()
    expect(state).to_have_text("Off")
    assert parse_otpauth(read_qr(page))["secret"] == uri["secret"], "a wrong code must keep the pending secret"

    code_box.fill(phone.code())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status").filter(has_text="Multi-factor authentication")).to_contain_text(
        "Multi-factor authentication is enabled"
    )
    codes = backup_codes_shown(page)
    expect(state).to_have_text("On")
    expect(page.get_by_role("link", name="Download backup codes")).to_have_attribute(
        "download", "chat360-backup-codes.txt"
    )

    # -- second step --------------------------------------------------------------------------------------
    sign_out(page)
    fill_sign_in(page, email)
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    page.get_by_role("textbox", name="Authentication code").fill(phone.code())
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("navigation", name="Sidebar")).to_be_visible()

    # -- turn it off with a current code ------------------------------------------------------------------------
    _open_mfa_section(page)
    expect(state).to_have_text("On")
    page.get_by_role("button", name="Edit Time-Based OTP Authentication").click()
    switch = page.get_by_role("switch", name="Enable")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()
    expect(page.get_by_role("link", name="Use a backup code")).to_be_visible()
    code_box = page.get_by_role("textbox", name="Authentication code")
    code_box.fill(phone.wrong_code())
    page.get_by_role("button", name="Disable").click()
    expect(code_box).to_have_attribute("aria-invalid", "true")
    expect(state).to_have_text("On")
    code_box.fill(phone.code())
    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("status")).to_contain_text("turned off")
    expect(state).to_have_text("Off")
    expect(page.get_by_role("switch", name="Enable")).to_have_attribute("aria-checked", "false")
    assert len(codes) == 10

    # Signing in again asks for the password only.
    sign_out(page)
    fill_sign_in(page, email)
    expect(page.get_by_role("navigation", name="Sidebar")).to_be_visible()

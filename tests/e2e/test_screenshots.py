"""The picture gallery of docs/screenshots/ (shown in README.md): each screen a member meets, at 1024 × 768.

Runs only with SCREENSHOTS=1 (`make screenshots`), so the ordinary suite never rewrites committed files.
File names start with the language (`en-…`), so translated galleries can sit next to this one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .flows import (
    QR_NAME,
    STEPUP_WINDOW,
    Authenticator,
    backup_codes_shown,
    confirm_if_asked,
    fill_sign_in,
    new_member,
    parse_otpauth,
    read_qr,
    reauth_dialog,
    sign_out,
)
from .support import LiveServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.environ.get("SCREENSHOTS") != "1", reason="set SCREENSHOTS=1 (make screenshots)"),
]

GALLERY = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
LANGUAGE = os.environ.get("SCREENSHOTS_LANGUAGE", "en")


def shoot(page: Page, name: str) -> None:
    """The viewport as it is now (not the whole page: the pictures stay small and alike)."""
    page.mouse.move(0, 0)
    GALLERY.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=GALLERY / f"{LANGUAGE}-{name}.png", caret="initial", animations="disabled")


def test_gallery(page: Page, stepup_server: LiveServer) -> None:
    page.set_viewport_size({"width": 1024, "height": 768})
    email = new_member(stepup_server, "gallery", role="admin")
    for n in range(3):
        new_member(stepup_server, f"teammate{n}")
    page.goto("/login")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    shoot(page, "sign-in")
    fill_sign_in(page, email)
    expect(page.get_by_role("navigation", name="Sidebar")).to_be_visible()

    page.goto("/settings/mfa/totp")
    shoot(page, "enrolment-off")
    page.get_by_role("switch", name="Enable").click()
    confirm_if_asked(page, page.get_by_role("img", name=QR_NAME))
    shoot(page, "enrolment-qr")
    phone = Authenticator(parse_otpauth(read_qr(page))["secret"])
    page.get_by_role("textbox", name="6-digit code").fill(phone.code())
    page.get_by_role("button", name="Confirm").click()
    confirm_if_asked(page, page.get_by_role("status").filter(has_text="Multi-factor authentication is enabled"))
    backup_codes_shown(page)
    page.get_by_role("list", name="Your backup codes").scroll_into_view_if_needed()
    shoot(page, "enrolment-codes")

    page.goto("/settings?section=mfa")
    page.get_by_role("button", name="Regenerate backup codes").click()
    confirm_if_asked(page, page.get_by_role("list", name="Your backup codes"), code=phone.code)
    backup_codes_shown(page)
    page.get_by_role("list", name="Your backup codes").scroll_into_view_if_needed()
    shoot(page, "backup-codes")

    page.goto("/settings/mfa/passkeys")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    shoot(page, "passkeys")

    checked = time.monotonic()  # the window of "Confirm it's you" runs out: the one pause of this module
    page.wait_for_timeout(max(0, checked + STEPUP_WINDOW + 0.5 - time.monotonic()) * 1000)
    page.goto("/settings/webhooks")
    expect(reauth_dialog(page)).to_be_visible()
    shoot(page, "confirm-its-you")
    page.keyboard.press("Escape")  # the dialog stood for Webhooks: closing it goes back to Settings
    expect(reauth_dialog(page)).to_have_count(0)
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible()

    sessions = page.get_by_role("region", name="Sessions")
    sessions.scroll_into_view_if_needed()
    shoot(page, "sessions")
    page.goto("/team")
    expect(page.get_by_role("heading", name="Team", level=1)).to_be_visible()
    shoot(page, "team")
    page.goto("/activity")
    expect(page.get_by_role("heading", name="Security activity", level=1)).to_be_visible()
    shoot(page, "activity")

    sign_out(page)
    fill_sign_in(page, email)
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    shoot(page, "second-step")

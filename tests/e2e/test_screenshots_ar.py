"""The Arabic half of the picture gallery (docs/screenshots/ar-*.png): the same screens as
test_screenshots.py, in a browser that asks for Arabic, so every page is served right to left.

Controls are found by role and their Arabic accessible names, looked up in the shipped catalog; runs only with
SCREENSHOTS=1 (`make screenshots`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from babel.support import Translations
from playwright.sync_api import Browser, Locator, Page, expect

from .flows import APP_NAME, PASSWORD, STEPUP_WINDOW, Authenticator, new_member, parse_otpauth, read_qr
from .support import LiveServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.environ.get("SCREENSHOTS") != "1", reason="set SCREENSHOTS=1 (make screenshots)"),
]

ROOT = Path(__file__).resolve().parents[2]
GALLERY = ROOT / "docs" / "screenshots"
AR = Translations.load(str(ROOT / "locales"), ["ar"])
T = AR.gettext


@pytest.fixture
def arabic(browser: Browser, stepup_server: LiveServer) -> Iterator[Page]:
    context = browser.new_context(base_url=stepup_server.url, locale="ar", timezone_id="UTC")
    context.set_default_timeout(10000)
    page = context.new_page()
    page.set_viewport_size({"width": 1024, "height": 768})
    yield page
    context.close()


def shoot(page: Page, name: str) -> None:
    page.mouse.move(0, 0)
    page.screenshot(path=GALLERY / f"ar-{name}.png", caret="initial", animations="disabled")


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_role("textbox", name=T("Email")).fill(email)
    page.get_by_role("textbox", name=T("Password")).fill(PASSWORD)
    page.get_by_role("button", name=T("Sign in"), exact=True).click()


def confirm_if_asked(page: Page, done: Locator, code: Callable[[], str] | None = None) -> None:
    """As flows.confirm_if_asked, in Arabic: answer "Confirm it's you" if it comes first (a 2-second window)."""
    dialog = page.get_by_role("dialog", name=T("Confirm it's you"))
    expect(done.or_(dialog).first).to_be_visible()
    if not done.is_visible() and dialog.is_visible():
        if code is None:
            dialog.get_by_role("textbox", name=T("Password")).fill(PASSWORD)
        else:
            dialog.get_by_role("textbox", name=T("Authentication code")).fill(code())
        dialog.get_by_role("button", name=T("Verify")).click()
        expect(done).to_be_visible()


def test_arabic_gallery(arabic: Page, stepup_server: LiveServer) -> None:
    page = arabic
    email = new_member(stepup_server, "gallery-ar", role="admin")
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    shoot(page, "sign-in")
    sign_in(page, email)
    expect(page.get_by_role("navigation", name=T("Sidebar"))).to_be_visible()
    page.goto("/settings/mfa/totp")
    shoot(page, "enrolment-off")
    page.get_by_role("switch", name=T("Enable")).click()
    qr_name = T("QR code for adding %(app)s to your authenticator app") % {"app": APP_NAME}
    confirm_if_asked(page, page.get_by_role("img", name=qr_name))
    shoot(page, "enrolment-qr")
    phone = Authenticator(parse_otpauth(read_qr(page, qr_name))["secret"])
    page.get_by_role("textbox", name=T("6-digit code")).fill(phone.code())
    page.get_by_role("button", name=T("Confirm")).click()
    codes = page.get_by_role("list", name=T("Your backup codes"))
    confirm_if_asked(page, codes)
    codes.scroll_into_view_if_needed()
    shoot(page, "enrolment-codes")
    checked = time.monotonic()
    page.wait_for_timeout(max(0, checked + STEPUP_WINDOW + 0.5 - time.monotonic()) * 1000)
    page.goto("/settings/webhooks")
    expect(page.get_by_role("dialog", name=T("Confirm it's you"))).to_be_visible()
    shoot(page, "confirm-its-you")
    for path, name in [("/team", "team"), ("/activity", "activity")]:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        shoot(page, name)
    page.goto("/settings")
    page.get_by_role("region", name=T("Sessions")).scroll_into_view_if_needed()
    shoot(page, "sessions")
    page.get_by_role("button", name=T("Sign out"), exact=True).first.click()
    sign_in(page, email)
    expect(page.get_by_role("heading", name=T("Two-step verification"))).to_be_visible()
    shoot(page, "second-step")

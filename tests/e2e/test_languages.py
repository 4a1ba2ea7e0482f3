"""The pages in German and Arabic, in a real browser: the browser's Accept-Language picks German for sign-in
and the second step, the member's choice in Settings (Arabic) wins after that on every page and across
sign-ins, `<html lang dir>` follows, and axe-core (WCAG 2.2 AA) finds nothing in either language."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from .flows import PASSWORD, enrol, expect_accessible, new_member, sign_in, sign_out
from .support import LiveServer

pytestmark = pytest.mark.e2e
GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}


def expect_language(page: Page, lang: str, direction: str) -> None:
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("html")).to_have_attribute("dir", direction)


def german_sign_in(page: Page, email: str, code: str) -> None:
    page.goto("/login")
    expect_language(page, "de", "ltr")
    expect_accessible(page, "sign-in, German")
    page.get_by_role("textbox", name="E-Mail").fill(email)
    page.get_by_label("Passwort").fill(PASSWORD)
    page.get_by_role("button", name="Anmelden", exact=True).click()
    expect(page.get_by_role("heading", name="Bestätigung in zwei Schritten")).to_be_visible()
    expect_accessible(page, "second step, German")
    box = page.get_by_role("textbox", name="Authentifizierungscode")
    expect(box).to_have_attribute("dir", "ltr")
    box.fill(code)
    page.get_by_role("button", name="Bestätigen").click()


def test_german_from_the_browser_then_arabic_by_choice(page: Page, live_server: LiveServer) -> None:
    admin = new_member(live_server, "lang-admin", role="admin")
    sign_in(page, admin)
    enrolled = enrol(page)
    sign_out(page)

    # Chromium sends the context's locale as Accept-Language; this browser asks for German from here on.
    page.route("**/*", lambda route: route.continue_(headers=route.request.headers | GERMAN))
    german_sign_in(page, admin, enrolled.authenticator.code())
    sidebar = page.get_by_role("navigation", name="Seitenleiste")
    sidebar.get_by_role("link", name="Einstellungen", exact=True).click()
    expect(page.get_by_role("heading", name="Einstellungen", level=1)).to_be_visible()
    expect_language(page, "de", "ltr")
    expect_accessible(page, "Settings, German")
    sidebar.get_by_role("link", name="Team", exact=True).click()
    expect(page.get_by_role("heading", name="Team", level=1)).to_be_visible()
    expect_accessible(page, "Team, German")

    # The member chooses Arabic: it wins over the browser's German, on every page.
    sidebar.get_by_role("link", name="Einstellungen", exact=True).click()
    page.get_by_role("combobox", name="Sprache").select_option("ar")
    page.get_by_role("button", name="Sprache speichern", exact=True).click()
    expect_language(page, "ar", "rtl")
    expect(page.get_by_role("heading", name="الإعدادات", level=1)).to_be_visible()
    expect_accessible(page, "Settings, Arabic")
    sidebar = page.get_by_role("navigation", name="الشريط الجانبي")
    sidebar.get_by_role("link", name="الفريق", exact=True).click()
    expect(page.get_by_role("heading", name="الفريق", level=1)).to_be_visible()
    expect_language(page, "ar", "rtl")
    expect_accessible(page, "Team, Arabic")
    sidebar.get_by_role("link", name="لوحة المعلومات", exact=True).click()
    expect_language(page, "ar", "rtl")

    # Signed out and in again: the choice is on the account, so it is back as soon as the member is known.
    page.get_by_role("button", name="تسجيل الخروج", exact=True).click()
    german_sign_in(page, admin, enrolled.authenticator.code())
    expect(page.get_by_role("navigation", name="الشريط الجانبي")).to_be_visible()
    expect_language(page, "ar", "rtl")

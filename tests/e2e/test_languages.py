"""The pages in German and Arabic, in a real browser: the browser's Accept-Language picks German for sign-in
and the second step, the member's choice in Settings (Arabic) wins after that on every page and across
sign-ins, `<html lang dir>` follows, and axe-core (WCAG 2.2 AA) finds nothing in either language.

`test_every_page_in` walks every page and its main states once per language (a browser asking for German or
Arabic, one member): `lang`/`dir`, axe, and no visible text left in English. Controls are found by their
names in the shipped catalog.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from babel.support import Translations
from playwright.sync_api import Locator, Page, expect

from .conftest import _serve
from .flows import (
    APP_NAME,
    PASSWORD,
    Authenticator,
    enrol,
    expect_accessible,
    new_member,
    parse_otpauth,
    read_qr,
    sign_in,
    sign_out,
)
from .support import LiveServer
from .test_passkeys import authenticator

pytestmark = pytest.mark.e2e
GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
LOCALES = Path(__file__).resolve().parents[2] / "locales"
SET_PASSWORD_LINK = re.compile(r"https?://\S+/set-password/\S+")
SETUP_LINK = re.compile(r"https?://\S+/setup/\S+")
# The visible text of the page, one entry per text node, leaving out what is meant to stay as typed or sent
# (codes, keys, addresses: `dir="ltr"`, `<code>`), what is marked as English (`lang="en"`) and what nobody sees.
VISIBLE_TEXTS = """() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const texts = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement, text = node.textContent.trim();
    if (!text || !el || el.closest("script, style, code, [dir=ltr], [lang=en], [aria-hidden=true]")) continue;
    if (!el.checkVisibility({visibilityProperty: true})) continue;
    texts.push(text);
  }
  return texts;
}"""
# Latin-script words that belong in an Arabic page: names, addresses, what a browser calls itself. (Acronyms
# such as QR, PIN or UTC are left as they are in Arabic too, so only words with lower-case letters count.)
LATIN_ALLOWED = re.compile(
    r"Chat360|Google Authenticator|Microsoft Authenticator|1Password|HeadlessChrome|Chrome|Chromium|Linux|\S+@\S+"
    r"|https?://\S+"
)


class Walk:
    """One member's browser in one language: each state is checked for `lang`/`dir`, axe and English left over."""

    def __init__(self, page: Page, lang: str) -> None:
        self.page, self.lang = page, lang
        self.translations = Translations.load(str(LOCALES), [lang])
        catalog = self.translations
        self.english = {m for m in _msgids(lang) if catalog.gettext(m) != m and len(m) > 3}

    def t(self, message: str, **values: object) -> str:
        text = self.translations.gettext(message)
        return text % values if values else text

    def check(self, state: str) -> None:
        html = self.page.locator("html")
        expect(html).to_have_attribute("lang", self.lang)
        expect(html).to_have_attribute("dir", "rtl" if self.lang == "ar" else "ltr")
        expect_accessible(self.page, f"{state} ({self.lang})")
        texts: list[str] = self.page.evaluate(VISIBLE_TEXTS)
        english = [text for text in texts if text in self.english]
        if self.lang == "ar":
            english += [t for t in texts if re.search(r"[A-Za-z]*[a-z]{2}", LATIN_ALLOWED.sub("", t))]
        assert not english, f"{state} ({self.lang}): text not translated: {english}"

    def button(self, name: str, **values: object) -> Locator:
        return self.page.get_by_role("button", name=self.t(name, **values), exact=True)

    def textbox(self, name: str) -> Locator:
        return self.page.get_by_role("textbox", name=self.t(name), exact=True)

    def heading(self, name: str) -> Locator:
        return self.page.get_by_role("heading", name=self.t(name), level=1)

    def sidebar(self, name: str) -> Locator:
        nav = self.page.get_by_role("navigation", name=self.t("Sidebar"))
        return nav.get_by_role("link", name=self.t(name), exact=True)

    def section(self, name: str) -> Locator:
        nav = self.page.get_by_role("navigation", name=self.t("Settings sections"))
        return nav.get_by_role("link", name=self.t(name), exact=True)

    def fill_sign_in(self, email: str, password: str = PASSWORD) -> None:
        self.page.goto("/login")
        self.textbox("Email").fill(email)
        self.textbox("Password").fill(password)
        self.button("Sign in").click()


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A server nobody has an account on yet: the only place the first admin's set-up page exists."""
    yield from _serve("empty_server", tmp_path_factory, request)


def _msgids(lang: str) -> set[str]:
    from babel.messages.pofile import read_po

    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return {m.id for m in read_po(f) if isinstance(m.id, str) and m.id and "%" not in m.id}


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


@pytest.mark.parametrize("lang", ["de", "ar"])
def test_every_page_in(
    lang: str, new_page: Callable[..., Page], live_server: LiveServer, empty_server: LiveServer
) -> None:
    walk = Walk(new_page(locale="de-DE" if lang == "de" else "ar"), lang)
    page, t = walk.page, walk.t
    authenticator(page)  # a platform authenticator, for the passkey states
    email = new_member(live_server, f"every-page-{lang}", role="admin")

    # -- sign-in, and its error --------------------------------------------------------------------------------
    page.goto("/login")
    walk.check("sign-in")
    walk.fill_sign_in(email, PASSWORD + " wrong")
    expect(walk.textbox("Password")).to_have_attribute("aria-invalid", "true")
    walk.check("sign-in, wrong password")
    walk.fill_sign_in(email)
    expect(walk.heading("Dashboard")).to_be_visible()
    walk.check("dashboard")

    # -- Settings, Sessions, and each state of MFA ------------------------------------------------------------
    walk.sidebar("Settings").click()
    expect(walk.heading("Settings")).to_be_visible()
    expect(page.get_by_role("region", name=t("Sessions"))).to_be_visible()
    walk.check("settings with sessions, MFA collapsed")
    mfa = page.get_by_role("button", name=t("Multi-Factor Authentication"))
    mfa.click()
    expect(mfa).to_have_attribute("aria-expanded", "true")
    walk.check("settings, MFA off")
    page.get_by_role("button", name=f"{t('Edit')} {t('Time-Based OTP Authentication')}", exact=True).click()
    switch = page.get_by_role("switch", name=t("Enable"))
    expect(switch).to_have_attribute("aria-checked", "false")
    walk.check("authenticator app, off")
    switch.click()
    qr_name = t("QR code for adding %(app)s to your authenticator app", app=APP_NAME)
    expect(page.get_by_role("img", name=qr_name)).to_be_visible()
    walk.check("enrolling, QR code and setup key")
    phone = Authenticator(parse_otpauth(read_qr(page, qr_name))["secret"])
    walk.textbox("6-digit code").fill(phone.code())
    walk.button("Confirm").click()
    codes = page.get_by_role("list", name=t("Your backup codes"))
    expect(codes.get_by_role("listitem")).to_have_count(10)
    walk.check("backup codes shown")
    walk.button("I have saved my backup codes").click()
    expect(
        page.get_by_role("status").filter(has_text=t("You confirmed that you saved your backup codes."))
    ).to_be_visible()
    expect(page.get_by_text(t("On"), exact=True)).to_be_visible()
    walk.check("settings, MFA on")

    walk.button("Add a passkey").click()
    create = walk.button("Create passkey")
    expect(create).to_be_visible()
    walk.check("passkeys panel, about to create one")
    create.click()
    name_box = walk.textbox("Passkey name")
    expect(name_box).not_to_have_value("")
    passkey = "حاسوب" if lang == "ar" else "Laptop"  # what the member types, in their own language
    name_box.fill(passkey)
    walk.button("Save").click()
    expect(page.get_by_role("button", name=f"{t('Remove')} {passkey}", exact=True)).to_be_visible()
    walk.check("passkeys panel, one passkey")

    page.goto("/settings/mfa/checkup")
    expect(walk.heading("2FA check-up")).to_be_visible()
    walk.check("MFA check-up")

    # -- Webhooks and Billing (as they are, and refused), Team with a one-time link, Security activity ----------
    # Webhooks belong to the organisation on the shared server: this test adds none.
    walk.sidebar("Settings").click()
    walk.section("Webhooks").click()
    url_box = walk.textbox("Webhook URL")
    url_box.fill("http://x")
    walk.button("Add webhook").click()
    expect(url_box).to_have_attribute("aria-invalid", "true")
    walk.check("webhooks, invalid URL")
    walk.section("Billing").click()
    billing = walk.textbox("Billing email")
    expect(billing).to_be_visible()
    walk.check("billing")
    billing.fill("not an email")
    walk.button("Save billing details").click()
    expect(billing).to_have_attribute("aria-invalid", "true")
    walk.check("billing, invalid email")

    walk.sidebar("Team").click()
    expect(walk.heading("Team")).to_be_visible()
    walk.check("team")
    add = page.get_by_role("region", name=t("Add a member"))
    newcomer = f"new-{email}"
    add.get_by_role("textbox", name=t("Email"), exact=True).fill(newcomer)
    add.get_by_role("button", name=t("Add member"), exact=True).click()
    added = page.get_by_role("status").filter(has_text=newcomer)
    expect(added).to_be_visible()
    walk.check("team with a one-time link")
    link = SET_PASSWORD_LINK.search(added.inner_text())
    assert link, added.inner_text()

    walk.sidebar("Security activity").click()
    expect(walk.heading("Security activity")).to_be_visible()
    walk.check("security activity")

    # -- "Confirm it's you": the dialog (as the server sends it to htmx when the check is stale), its backup-code
    # alternative, and the page of its own that a browser without JavaScript is sent to ------------------------
    walk.sidebar("Settings").click()
    walk.section("Webhooks").click()
    # The 15-minute window does not lapse in a test; ask for the same dialog the ReauthRequired handler swaps in.
    page.evaluate("htmx.ajax('GET', '/reauth?next=/settings/webhooks', {target: '#modal', swap: 'innerHTML'})")
    dialog = page.get_by_role("dialog", name=t("Confirm it's you"))
    expect(dialog.get_by_role("textbox", name=t("Authentication code"))).to_be_visible()
    walk.check("re-auth dialog")
    dialog.get_by_role("button", name=t("Use a backup code"), exact=True).click()
    expect(dialog.get_by_role("textbox", name=t("Backup code"))).to_be_visible()
    walk.check("re-auth dialog, backup code")
    page.goto("/reauth?next=/settings/webhooks")
    expect(page.get_by_role("textbox", name=t("Authentication code"))).to_be_visible()
    walk.check("re-auth page")

    response = page.goto("/no-such-page")
    assert response is not None and response.status == 404
    expect(walk.heading("Page not found")).to_be_visible()
    walk.check("404 page")

    # -- the second step: code (with the passkey offered), backup code -----------------------------------------
    page.goto("/")
    walk.button("Sign out").click()
    walk.fill_sign_in(email)
    expect(walk.textbox("Authentication code")).to_be_visible()
    expect(walk.button("Use a passkey")).to_be_visible()
    walk.check("second step")
    page.get_by_role("link", name=t("Use a backup code"), exact=True).click()
    expect(walk.textbox("Backup code")).to_be_visible()
    walk.check("second step, backup code")

    # -- the one-time links, signed out: set a password, and a link that is not (or no longer) valid -----------
    page.goto(link.group(0))
    expect(walk.heading("Choose a password")).to_be_visible()
    walk.check("set-password page")
    walk.textbox("Password").fill("short")
    walk.button("Set password").click()
    expect(walk.textbox("Password")).to_have_attribute("aria-invalid", "true")
    walk.check("set-password page, password too short")
    response = page.goto("/setup/not-a-valid-token")
    assert response is not None and response.status == 404
    walk.check("invalid link page")
    setup = SETUP_LINK.search(empty_server.cli("setup-link").stdout)  # a fresh link; earlier ones stop working
    assert setup, "no set-up link printed"
    page.goto(setup.group(0))
    expect(walk.heading("Create the first admin account")).to_be_visible()
    walk.check("first admin's set-up page")

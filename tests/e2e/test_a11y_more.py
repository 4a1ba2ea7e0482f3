"""Reflow, target size, forced colours and the session timeout warning, in Chromium (WCAG 2.2 AA):

- 1.4.10 Reflow: at 320 CSS px the sign-in page, Settings (MFA expanded, enrolment with the QR code), Team and
  Security activity never scroll sideways (a table may scroll inside its own container);
- 2.5.8 Target Size (Minimum): every button and link on Settings is at least 24 × 24 px, or is a link inside
  a sentence (the inline exception);
- 1.4.12 Text Spacing: with the criterion's spacing (line height 1.5, paragraphs 2 em apart, letters 0.12 em,
  words 0.16 em) at 1280 px, no control or text container on sign-in and Settings (MFA expanded, enrolment with
  the QR code and setup key) is cut off or spills sideways, and the page does not scroll sideways;
- forced colours (Windows High Contrast): the Enable switch looks different on and off, and a focused button
  looks different from an unfocused one;
- 2.2.1 Timing Adjustable: before the idle timeout ends, "Are you still there?" offers "Stay signed in", which
  keeps the session past the original deadline; without it the session ends. axe runs on the warning.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import _fail_on_csp, _new_page, _serve
from .flows import (
    PASSWORD,
    QR_NAME,
    Authenticator,
    confirm_if_asked,
    enrol,
    expect_accessible,
    new_member,
    setup_key,
    sign_in,
)
from .support import LiveServer

pytestmark = pytest.mark.e2e

IDLE, WARNING = 10, 8  # seconds: the warning shows about two seconds after a page loads
MIN_TARGET = 24

_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')].filter((el) => {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || el.closest('[data-scroll], .table-scroll')) return false;
    return box.right > width + 1 || box.left < -1;
  }).slice(0, 8).map((el) => el.outerHTML.slice(0, 120));
  return {scroll: document.documentElement.scrollWidth, width, wide};
}"""

# The spacing of WCAG 1.4.12, as a constructed style sheet: the pages' CSP (style-src 'self') refuses an inline
# <style>, and a bookmarklet that sets the same values through the CSSOM is what testers use anyway.
_TEXT_SPACING = """() => {
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(`* { line-height: 1.5 !important; letter-spacing: 0.12em !important;
    word-spacing: 0.16em !important; } p { margin-bottom: 2em !important; }`);
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  const p = document.querySelector('main p, p');
  const style = getComputedStyle(p), size = parseFloat(style.fontSize);
  const near = (value, em) => Math.abs(parseFloat(value) - em * size) < 0.5;
  return near(style.letterSpacing, 0.12) && near(style.lineHeight, 1.5);
}"""

# Controls and text containers whose content is wider than their box (cut off, or spilling over a neighbour).
# Inline boxes have no client width of their own; a table may scroll inside its container (1.4.10).
_CLIPPED_TEXT = """() => [...document.querySelectorAll(
    'button, a, label, input, select, textarea, p, li, dt, dd, th, td, h1, h2, h3, h4, h5, legend, code, .badge')]
  .filter((el) => el.getClientRects().length > 0 && getComputedStyle(el).display !== 'inline')
  .filter((el) => !el.closest('.visually-hidden, [data-scroll], .table-scroll'))
  .filter((el) => el.scrollWidth > el.clientWidth + 1)
  .slice(0, 8).map((el) => `${el.outerHTML.slice(0, 120)} (${el.scrollWidth} > ${el.clientWidth})`)"""

_SMALL_TARGETS = """(min) => [...document.querySelectorAll('a[href], button, [role=switch], summary')]
  .filter((el) => el.getClientRects().length > 0 && !el.closest('p, li.prose, .hint'))
  .map((el) => ({html: el.outerHTML.slice(0, 100), box: el.getBoundingClientRect()}))
  .filter(({box}) => box.width < min || box.height < min)
  .map(({html, box}) => `${html} (${Math.round(box.width)}x${Math.round(box.height)})`)"""


@pytest.fixture(scope="module")
def timeout_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """A server whose sessions end after IDLE seconds idle, with the warning WARNING seconds before."""
    yield from _serve("timeout_server", tmp_path_factory, request, IDLE_TIMEOUT=str(IDLE), IDLE_WARNING=str(WARNING))


@pytest.fixture
def timed_page(browser: Browser, timeout_server: LiveServer) -> Iterator[Callable[[], Page]]:
    """Pages on the timeout server, each in its own browser context, CSP-checked at the end."""
    opened = []

    def make() -> Page:
        opened.append(_new_page(browser, timeout_server.url, javascript=True))
        return opened[-1][0]

    yield make
    for page, _ in opened:
        page.context.close()
    _fail_on_csp([collector for _, collector in opened])


def expect_no_sideways_scroll(page: Page, state: str) -> None:
    found = page.evaluate(_OVERFLOW)
    assert found["scroll"] <= found["width"], f"{state}: scrolls sideways at {found['width']} px: {found['wide']}"


def settings_then_qr_code(page: Page, check: Callable[[Page, str], None]) -> None:
    """Settings with the MFA section expanded (and Sessions), then the enrolment's QR code and setup key,
    each state checked with `check`."""
    page.goto("/settings?section=mfa")
    expect(page.get_by_role("button", name="Multi-Factor Authentication")).to_have_attribute("aria-expanded", "true")
    check(page, "Settings, MFA expanded, with sessions")
    page.goto("/settings/mfa/totp")
    page.get_by_role("switch", name="Enable").click()
    confirm_if_asked(page, page.get_by_role("img", name=QR_NAME))
    check(page, "enrolment, QR code and setup key")


def test_pages_reflow_at_320_px(page: Page, live_server: LiveServer) -> None:
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto("/login")
    expect_no_sideways_scroll(page, "sign-in")
    admin = new_member(live_server, "reflow-admin", role="admin")
    for n in range(3):  # rows for Team and Security activity, with long addresses
        new_member(live_server, f"reflow-someone-with-a-long-address-{n}")
    sign_in(page, admin)
    settings_then_qr_code(page, expect_no_sideways_scroll)
    # With MFA on, the admin's Team row gets a "Reset MFA" form (and its screen-reader-only label) at its far end.
    page.get_by_role("textbox", name="6-digit code").fill(Authenticator(setup_key(page)).code())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("list", name="Your backup codes")).to_be_visible()
    page.goto("/team")
    expect(page.get_by_role("heading", name="Team", level=1)).to_be_visible()
    expect_no_sideways_scroll(page, "Team")
    expect_accessible(page, "Team at 320 px")  # a table that scrolls inside itself can still be reached
    page.goto("/activity")
    expect(page.get_by_role("heading", name="Security activity", level=1)).to_be_visible()
    expect_no_sideways_scroll(page, "Security activity")
    expect_accessible(page, "Security activity at 320 px")


def expect_text_spacing_fits(page: Page, state: str) -> None:
    assert page.evaluate(_TEXT_SPACING), f"{state}: the text-spacing style sheet did not apply"
    clipped = page.evaluate(_CLIPPED_TEXT)
    assert clipped == [], f"{state}: text does not fit with WCAG text spacing: {clipped}"
    expect_no_sideways_scroll(page, f"{state}, with WCAG text spacing")


def test_text_spacing_does_not_cut_off_text(page: Page, live_server: LiveServer) -> None:
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/login")
    expect_text_spacing_fits(page, "sign-in")
    sign_in(page, new_member(live_server, "spacing"))
    settings_then_qr_code(page, expect_text_spacing_fits)


def test_settings_targets_are_at_least_24_px(page: Page, live_server: LiveServer) -> None:
    sign_in(page, new_member(live_server, "targets"))
    for path in ("/settings", "/settings?section=mfa"):
        page.goto(path)
        small = page.evaluate(_SMALL_TARGETS, MIN_TARGET)
        assert small == [], f"{path}: targets under {MIN_TARGET} px: {small}"
    enrol(page)
    for path in ("/settings?section=mfa", "/settings/mfa/passkeys", "/activity"):
        page.goto(path)
        small = page.evaluate(_SMALL_TARGETS, MIN_TARGET)
        assert small == [], f"{path} with MFA on: targets under {MIN_TARGET} px: {small}"


def _shot(page: Page, selector_page_box: dict[str, float], pad: int = 8) -> bytes:
    """A screenshot of a box and `pad` px around it (an outline is drawn outside the element's own box)."""
    box = selector_page_box
    clip = {
        "x": box["x"] - pad,
        "y": box["y"] - pad,
        "width": box["width"] + 2 * pad,
        "height": box["height"] + 2 * pad,
    }
    return page.screenshot(clip=clip, caret="initial", animations="disabled")


def _calm(page: Page) -> None:
    """Nothing focused and no pointer over the page, so only the state under test differs."""
    page.mouse.move(0, 0)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")


def test_forced_colours_keep_the_switch_state_and_the_focus_ring(page: Page, live_server: LiveServer) -> None:
    page.emulate_media(forced_colors="active")
    assert page.evaluate("() => matchMedia('(forced-colors: active)').matches")
    sign_in(page, new_member(live_server, "forced"))
    page.goto("/settings/mfa/totp")
    switch = page.get_by_role("switch", name="Enable")
    expect(switch).to_have_attribute("aria-checked", "false")
    _calm(page)
    off = switch.screenshot(caret="initial", animations="disabled")
    switch.click()
    confirm_if_asked(page, page.get_by_role("img", name=QR_NAME))
    switch = page.get_by_role("switch", name="Enable")
    expect(switch).to_have_attribute("aria-checked", "true")
    _calm(page)
    on = switch.screenshot(caret="initial", animations="disabled")
    assert on != off, "in forced colours the switch looks the same on and off"

    button = page.get_by_role("button", name="Confirm")
    button.scroll_into_view_if_needed()
    _calm(page)
    box = button.bounding_box()
    assert box is not None
    unfocused = _shot(page, box)
    page.keyboard.press("Tab")  # keyboard focus, so :focus-visible applies
    button.focus()
    assert button.evaluate("(el) => el.matches(':focus-visible')")
    focused = _shot(page, box)
    assert focused != unfocused, "in forced colours a focused button looks like an unfocused one"


def test_timeout_warning_and_stay_signed_in(timed_page: Callable[[], Page], timeout_server: LiveServer) -> None:
    stays, leaves = timed_page(), timed_page()
    stayer, leaver = new_member(timeout_server, "stays"), new_member(timeout_server, "leaves")
    sign_in(leaves, leaver)
    leaves.goto("/settings")
    sign_in(stays, stayer)
    stays.goto("/settings")
    deadline = stays.evaluate("() => Date.now()") + IDLE * 1000  # the original deadline, as the page knows it

    warning = stays.get_by_role("alertdialog", name="Are you still there?")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("You'll be signed out in 1 minute")
    stay = warning.get_by_role("button", name="Stay signed in")
    expect(stay).to_be_focused()
    expect_accessible(stays, "timeout warning")
    # The cookie keeps whole seconds, so a stamp can read up to 1 s old: pressing at least 2 s after the page
    # loaded makes the extended deadline later than the original one by a margin the reload below can see.
    stays.wait_for_function(f"() => Date.now() > {deadline} - {(IDLE - 2) * 1000}", polling=100)
    stay.click()
    expect(warning).to_be_hidden()

    ended = leaves.get_by_role("alertdialog", name="You've been signed out")
    expect(ended).to_be_visible(timeout=(IDLE + 3) * 1000)
    expect(ended.get_by_role("link", name="Sign in again")).to_be_visible()
    expect_accessible(leaves, "signed out after the timeout")
    stays.wait_for_function(f"() => Date.now() > {deadline} + 500", polling=100)
    stays.reload()
    expect(stays.get_by_role("navigation", name="Sidebar")).to_be_visible()  # still signed in
    leaves.reload()
    expect(leaves.get_by_role("textbox", name="Email")).to_be_visible()  # signed out on the server


def test_without_javascript_no_warning_shows(page_nojs: Page, live_server: LiveServer) -> None:
    sign_in(page_nojs, new_member(live_server, "timeout-nojs"))
    page_nojs.goto("/settings")
    expect(page_nojs.get_by_role("alertdialog")).to_have_count(0)
    expect(page_nojs.get_by_role("button", name="Stay signed in")).to_be_hidden()


_FOCUS_HIDDEN = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const box = el.getBoundingClientRect();
  const x = Math.min(Math.max(box.left + box.width / 2, 0), innerWidth - 1);
  const y = Math.min(Math.max(box.top + box.height / 2, 0), innerHeight - 1);
  const seen = box.bottom > 0 && box.top < innerHeight && box.right > 0 && box.left < innerWidth;
  const top = document.elementFromPoint(x, y);
  const uncovered = top !== null && (el === top || el.contains(top) || top.contains(el));
  return seen && uncovered ? "" : el.outerHTML.slice(0, 100);
}"""


@pytest.mark.parametrize("width", [1024, 320])
def test_focus_is_never_hidden(page: Page, live_server: LiveServer, width: int) -> None:
    """2.4.11: Tab through Settings with the MFA section open; each focused element is in view and on top."""
    page.set_viewport_size({"width": width, "height": 640})
    sign_in(page, new_member(live_server, f"focus{width}"))
    page.goto("/settings?section=mfa")
    hidden = []
    for _ in range(40):
        page.keyboard.press("Tab")
        found = page.evaluate(_FOCUS_HIDDEN)
        if found:
            hidden.append(found)
    assert hidden == [], f"focused but hidden at {width} px: {hidden}"


def _paste(page: Page, name: str, text: str) -> None:
    """Put `text` on the clipboard and paste it with Ctrl+V into the textbox, as a password manager user does."""
    page.evaluate("(text) => navigator.clipboard.writeText(text)", text)
    box = page.get_by_role("textbox", name=name)
    box.click()
    box.press("ControlOrMeta+v")
    expect(box).to_have_value(text)


def test_every_code_field_takes_a_paste(page: Page, live_server: LiveServer) -> None:
    """3.3.8 Accessible Authentication: nothing has to be remembered or retyped. The password, the
    authenticator code and a backup code can each be pasted; the code field offers one-time-code autofill."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    email = new_member(live_server, "paste")
    sign_in(page, email)
    enrolled = enrol(page)
    page.get_by_role("button", name="Sign out", exact=True).click()
    page.goto("/login")
    _paste(page, "Email", email)
    _paste(page, "Password", PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    code_box = page.get_by_role("textbox", name="Authentication code")
    expect(code_box).to_have_attribute("autocomplete", "one-time-code")
    page.get_by_role("link", name="Use a backup code").click()
    _paste(page, "Backup code", enrolled.backup_codes[0])
    page.get_by_role("link", name="Use your authenticator app instead").click()
    _paste(page, "Authentication code", enrolled.authenticator.code())
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("navigation", name="Sidebar")).to_be_visible()

"""The whole Multi-Factor Authentication contract with JavaScript on, as a member (and a screen reader) meets it:
sign in, Settings › Multi-Factor Authentication › Edit › Enable › QR code › wrong code › right code › backup
codes, then the second step with a code and with a backup code (which works once). axe runs at each state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from .flows import (
    APP_NAME,
    BACKUP_CODE,
    PASSWORD,
    QR_NAME,
    Authenticator,
    backup_codes_shown,
    expect_accessible,
    fill_sign_in,
    new_member,
    parse_otpauth,
    read_qr,
    secret_bytes,
    setup_key,
    sidebar_link,
    sign_in,
    sign_out,
)
from .support import LiveServer

pytestmark = pytest.mark.e2e


def _mark_document(page: Page) -> None:
    """Tag the current document: the tag survives htmx swaps and disappears on any navigation."""
    page.evaluate("() => { window.__sameDocument = true; }")


def _same_document(page: Page) -> bool:
    return page.evaluate("() => window.__sameDocument === true")


def _described_by(page: Page, textbox_name: str) -> list[str]:
    """The texts of the elements a textbox's aria-describedby names (each must exist and be visible).

    The ids are read from the attribute, not chosen by the test: this checks the tie the contract asks for.
    """
    box = page.get_by_role("textbox", name=textbox_name)
    ids = (box.get_attribute("aria-describedby") or "").split()
    assert ids, f"textbox {textbox_name!r} has no aria-describedby"
    texts = []
    for ident in ids:
        described = page.locator(f"[id='{ident}']")
        expect(described).to_be_visible()
        texts.append(described.inner_text().strip())
    return texts


def _expect_error(page: Page, textbox_name: str, pattern: str) -> str:
    """The textbox is marked invalid and one of the messages tied to it matches ``pattern``."""
    expect(page.get_by_role("textbox", name=textbox_name)).to_have_attribute("aria-invalid", "true")
    texts = _described_by(page, textbox_name)
    errors = [t for t in texts if re.search(pattern, t, re.I)]
    assert errors, f"no message matching {pattern!r} tied to {textbox_name!r}: {texts}"
    return errors[0]


def _setup_key_value(page: Page) -> Locator:
    """The key itself: the <code> in the description that follows the term "Setup key"."""
    term = page.get_by_role("term").filter(has_text="Setup key")
    return term.locator("xpath=following-sibling::dd[1]").locator("code")


def test_enrol_with_javascript_then_sign_in_with_code_and_backup_code(page: Page, live_server: LiveServer) -> None:
    email = new_member(live_server, "enrol")

    # -- password step: a wrong password and an unknown email read the same ---------------------------------
    page.goto("/login")
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    expect_accessible(page, "login page")
    fill_sign_in(page, email, password=PASSWORD + " wrong")
    wrong_password = _expect_error(page, "Password", r"incorrect email or password")
    fill_sign_in(page, "nobody-" + email)
    assert _expect_error(page, "Password", r"incorrect email or password") == wrong_password
    expect_accessible(page, "login error")
    fill_sign_in(page, email)
    expect(page).to_have_url(re.compile(r"/$"))
    sidebar = page.get_by_role("navigation", name="Sidebar")
    expect(sidebar).to_be_visible()

    # -- Settings, section collapsed --------------------------------------------------------------------
    sidebar_link(page, "Settings").click()
    expect(page.get_by_role("heading", name="Settings", level=1)).to_be_visible()
    section = page.get_by_role("button", name="Multi-Factor Authentication")
    expect(section).to_have_attribute("aria-expanded", "false")
    expect(page.get_by_text("Time-Based OTP Authentication")).to_be_hidden()
    expect_accessible(page, "settings, section collapsed")

    # -- expanded in place ------------------------------------------------------------------------------
    _mark_document(page)
    url_before = page.url
    section.click()
    expect(section).to_have_attribute("aria-expanded", "true")
    # The first match is the row's text; the second is the hidden end of the Edit button's name.
    expect(page.get_by_text("Time-Based OTP Authentication", exact=True).first).to_be_visible()
    assert _same_document(page), "expanding the section navigated instead of swapping it in place"
    assert page.url == url_before
    state = page.get_by_text(re.compile(r"^(On|Off)$"))
    expect(state).to_have_text("Off")
    expect_accessible(page, "settings, section expanded")

    # -- Edit, Enable ------------------------------------------------------------------------------------
    page.get_by_role("button", name="Edit Time-Based OTP Authentication").click()
    switch = page.get_by_role("switch", name="Enable")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()
    qr = page.get_by_role("img", name=QR_NAME)
    expect(qr).to_be_visible()
    assert qr.locator("svg").count() == 1, "the QR code is an inline SVG (no URL carries the secret)"
    assert _same_document(page), "Enable navigated instead of swapping in place"
    expect(state).to_have_text("Off")
    expect_accessible(page, "enable pending (QR code shown)")

    # -- the QR code and the setup key ----------------------------------------------------------------------
    uri = parse_otpauth(read_qr(page))
    assert uri["label"] == f"{APP_NAME}:{email}"
    assert uri["issuer"] == APP_NAME
    secret = uri["secret"]
    assert re.fullmatch(r"[A-Z2-7]+", secret), secret
    assert len(secret_bytes(secret)) >= 20, "the secret has fewer than 160 bits"
    assert setup_key(page) == secret
    groups = _setup_key_value(page).locator("span").all_inner_texts()
    assert "".join(groups) == secret and all(len(g) == 4 for g in groups[:-1]), f"not grouped by 4: {groups}"
    phone = Authenticator(secret)

    # -- a wrong code -------------------------------------------------------------------------------------------
    code_box = page.get_by_role("textbox", name="6-digit code")
    code_box.fill(phone.wrong_code())
    page.get_by_role("button", name="Confirm").click()
    expect(code_box).to_have_attribute("aria-invalid", "true")
    _expect_error(page, "6-digit code", r"incorrect code")
    expect(page.get_by_role("img", name=QR_NAME)).to_be_visible()
    expect(state).to_have_text("Off")
    expect(page.get_by_role("status")).to_have_count(0)
    expect_accessible(page, "wrong code error")

    # -- the right code ---------------------------------------------------------------------------------------
    code_box.fill(phone.code())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status").filter(has_text="Multi-factor authentication")).to_contain_text(
        "Multi-factor authentication is enabled"
    )
    codes = backup_codes_shown(page)
    assert all(BACKUP_CODE.match(c) for c in codes), codes
    assert len(set(codes)) == 10
    expect(state).to_have_text("On")
    expect(page.get_by_role("switch", name="Enable")).to_have_attribute("aria-checked", "true")
    assert _same_document(page)
    expect_accessible(page, "backup codes shown")

    # -- download the backup codes -------------------------------------------------------------------------
    with page.expect_download() as info:
        page.get_by_role("link", name="Download backup codes").click()
    download = info.value
    assert download.suggested_filename == "chat360-backup-codes.txt"
    text = Path(download.path()).read_text(encoding="utf-8")
    in_file = [line.strip() for line in text.splitlines() if BACKUP_CODE.match(line.strip())]
    assert in_file == codes, text
    assert not any(
        re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", line) for line in text.splitlines() if line.strip() not in codes
    )

    # -- second step with a code ---------------------------------------------------------------------------
    sign_out(page)
    fill_sign_in(page, email)
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    expect(page.get_by_role("textbox", name="Authentication code")).to_be_visible()
    expect_accessible(page, "second-step page")
    page.get_by_role("textbox", name="Authentication code").fill(phone.code())
    page.get_by_role("button", name="Verify").click()
    expect(sidebar).to_be_visible()
    expect(page).to_have_url(re.compile(r"/$"))

    # -- second step with a backup code, which works once ----------------------------------------------------
    sign_out(page)
    fill_sign_in(page, email)
    page.get_by_role("link", name="Use a backup code").click()
    backup_box = page.get_by_role("textbox", name="Backup code")
    backup_box.fill(codes[3])
    page.get_by_role("button", name="Verify").click()
    expect(sidebar).to_be_visible()
    page.goto("/settings/mfa/totp")
    expect(page.get_by_text("9 of 10 left")).to_be_visible()
    expect(page.get_by_role("button", name="Regenerate backup codes")).to_be_visible()
    expect(page.get_by_role("list", name="Your backup codes")).to_have_count(0)  # shown once only

    sign_out(page)
    fill_sign_in(page, email)
    page.get_by_role("link", name="Use a backup code").click()
    backup_box.fill(codes[3])
    page.get_by_role("button", name="Verify").click()
    _expect_error(page, "Backup code", r"incorrect")
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    expect(sidebar).to_have_count(0)


def test_setup_key_copies_as_one_string(page: Page, live_server: LiveServer) -> None:
    """WCAG 3.3.8: the setup key, selected as a member would (a double click picks a word; with spaces between
    the groups it would pick one group) and copied, is the exact base32 secret, with no spaces from its grouping,
    and an authenticator set up from the copy works."""
    sign_in(page, new_member(live_server, "copy-key"))
    page.goto("/settings/mfa/totp")
    page.get_by_role("switch", name="Enable").click()
    secret = parse_otpauth(read_qr(page))["secret"]
    key = _setup_key_value(page)
    key.dblclick()
    copied = page.evaluate("() => window.getSelection().toString()")
    assert copied == secret, f"copied {copied!r}, the QR code says {secret!r}"
    assert re.fullmatch(r"[A-Z2-7]{32}", copied), copied
    # Selecting the whole element (a drag from end to end) gives the same string.
    whole = key.evaluate(
        """code => { const range = document.createRange(); range.selectNodeContents(code);
        const selection = window.getSelection(); selection.removeAllRanges(); selection.addRange(range);
        return selection.toString(); }"""
    )
    assert whole == secret, whole

    # The groups are still set apart on screen, by a gap that is not a character.
    boxes = [box for span in key.locator("span").all() if (box := span.bounding_box()) is not None]
    assert len(boxes) == 8, boxes
    gaps = [b["x"] - (a["x"] + a["width"]) for a, b in zip(boxes, boxes[1:], strict=False) if a["y"] == b["y"]]
    assert gaps and min(gaps) >= 4, f"groups not visibly apart: {gaps}"

    # oathtool computes the code from the copied string: it confirms the enrolment.
    page.get_by_role("textbox", name="6-digit code").fill(Authenticator(copied).code())
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status").filter(has_text="Multi-factor authentication is enabled")).to_be_visible()

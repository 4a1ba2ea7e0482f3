"""Steps that several browser tests share: members, signing in, enrolling, TOTP codes, axe assertions.

Controls are found only by role and accessible name (/work/shared/ui-contract.md), never by CSS class or id.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote, urlsplit

from playwright.sync_api import Locator, Page, expect

from .support import TOTP_PERIOD, LiveServer, axe_violations, decode_qr, format_violations, totp_at

PASSWORD = "correct horse battery staple"
APP_NAME = "Chat360"
QR_NAME = f"QR code for adding {APP_NAME} to your authenticator app"
CONFIRM_IT = "Confirm it's you"
BACKUP_CODE = re.compile(r"^[A-Z0-9]{4}(?:-[A-Z0-9]{4}){3}$")
# Seconds a second-factor check stays fresh on the `stepup_server` fixture.
STEPUP_WINDOW = 2
# A code for the previous step is only used when at least this many seconds of the current step remain:
# by the time the server checks it, it must still be within the ±1 step window.
_BOUNDARY_MARGIN = 4.0


def unique_email(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}@example.com"


def new_member(server: LiveServer, prefix: str, role: str = "agent") -> str:
    """Create a member through the CLI (password ``PASSWORD``) and return their unique e-mail address."""
    email = unique_email(prefix)
    server.create_user(email, role, PASSWORD)
    return email


def expect_accessible(page: Page, state: str, *, context: str | None = None) -> None:
    """axe-core finds nothing at WCAG 2.2 AA on the page (or within ``context``) in the given ``state``."""
    violations = axe_violations(page, context=context)
    assert violations == [], f"{state}: {format_violations(violations)}"


# --------------------------------------------------------------------------------------------------
# TOTP: an authenticator app that never offers a code the server has already accepted
# --------------------------------------------------------------------------------------------------


def _step_now() -> int:
    return int(time.time() // TOTP_PERIOD)


def _seconds_left() -> float:
    return TOTP_PERIOD - (time.time() % TOTP_PERIOD)


@dataclass
class Authenticator:
    """The member's phone: codes from ``oathtool``, each for a later time step than the one used before.

    The server accepts the steps T-1, T and T+1 around its clock and refuses a step at or before the last
    one it accepted, so three codes are available at once without waiting (T-1, then T, then T+1). In the
    last _BOUNDARY_MARGIN seconds of a step T-1 is skipped (it could expire on its way to the server); a
    third code asked for within those seconds then waits for the clock to reach the next step (see
    ``code``). No test uses more than three codes per member.
    """

    secret: str
    last_step: int | None = None

    def code(self) -> str:
        now = _step_now()
        step = now - 1 if _seconds_left() > _BOUNDARY_MARGIN else now
        if self.last_step is not None:
            step = max(step, self.last_step + 1)
        if step > now + 1:
            # Every acceptable step was used: the next one exists only once the clock reaches it. This waits on
            # that condition (bounded, at most one time step), it is not a fixed pause.
            deadline = time.monotonic() + TOTP_PERIOD + 1
            while _step_now() + 1 < step:
                assert time.monotonic() < deadline, "the clock did not advance"
                time.sleep(0.05)
        self.last_step = step
        return totp_at(self.secret, datetime.fromtimestamp(step * TOTP_PERIOD + 1, UTC))

    def wrong_code(self) -> str:
        """Six digits that match none of the steps T-2 … T+2 (so they are wrong whenever they arrive)."""
        now = _step_now()
        near = {totp_at(self.secret, datetime.fromtimestamp((now + d) * TOTP_PERIOD + 1, UTC)) for d in range(-2, 3)}
        candidate = 0
        while f"{candidate:06d}" in near:
            candidate += 1
        return f"{candidate:06d}"


def parse_otpauth(uri: str) -> dict[str, str]:
    """Check an ``otpauth://totp/Issuer:account?secret=…&issuer=…`` URI and return its parts."""
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth", uri
    assert parts.netloc == "totp", uri
    label = unquote(parts.path.lstrip("/"))
    query = {k: v[0] for k, v in parse_qs(parts.query, strict_parsing=True).items()}
    assert set(query) >= {"secret", "issuer"}, uri
    return {"label": label, **query}


def secret_bytes(secret: str) -> bytes:
    """Base32-decode a secret written without '=' padding."""
    assert "=" not in secret, secret
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def read_qr(page: Page, name: str = QR_NAME) -> str:
    """The otpauth URI in the QR code image, read from a screenshot of it as a phone camera would."""
    qr = page.get_by_role("img", name=name)
    expect(qr).to_be_visible()
    # caret="initial": by default Playwright hides text carets by writing to every input's style attribute and
    # leaves `style=""` behind, which htmx later copies during a swap and the page's CSP (style-src 'self')
    # then reports as an inline style. The screenshot must not change the page it looks at.
    return decode_qr(qr.screenshot(caret="initial"))


def setup_key(page: Page) -> str:
    """The text of the "Setup key" (the description that follows the term); its grouping is not in the text."""
    term = page.get_by_role("term").filter(has_text="Setup key")
    expect(term).to_be_visible()
    return term.locator("xpath=following-sibling::dd[1]").inner_text().strip()


# --------------------------------------------------------------------------------------------------
# Signing in and out
# --------------------------------------------------------------------------------------------------


def fill_sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_in(page: Page, email: str, password: str = PASSWORD, authenticator: Authenticator | None = None) -> None:
    """Password (and, with ``authenticator``, the second step), then wait for the signed-in sidebar."""
    fill_sign_in(page, email, password)
    if authenticator is not None:
        expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
        page.get_by_role("textbox", name="Authentication code").fill(authenticator.code())
        page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("navigation", name="Sidebar")).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("textbox", name="Email")).to_be_visible()


def sidebar_link(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Sidebar").get_by_role("link", name=name, exact=True)


def reauth_dialog(page: Page) -> Locator:
    return page.get_by_role("dialog", name=CONFIRM_IT)


def confirm_if_asked(
    page: Page, done: Locator, *, password: str = PASSWORD, code: Callable[[], str] | None = None
) -> None:
    """Wait until ``done`` is visible; if "Confirm it's you" shows up first, answer it (password, or a code).

    For steps that only need a fresh check when the machine was slow (e.g. enrolling on the server with a
    2-second window): the test does not depend on how long the preceding steps took.
    """
    dialog = reauth_dialog(page)
    expect(done.or_(dialog).first).to_be_visible()
    if not done.is_visible() and dialog.is_visible():
        if code is None:
            dialog.get_by_role("textbox", name="Password").fill(password)
        else:
            dialog.get_by_role("textbox", name="Authentication code").fill(code())
        dialog.get_by_role("button", name="Verify").click()
        expect(done).to_be_visible()


# --------------------------------------------------------------------------------------------------
# Enrolment (the short way, for tests whose subject is something else)
# --------------------------------------------------------------------------------------------------


@dataclass
class Enrolled:
    authenticator: Authenticator
    backup_codes: list[str]


def backup_codes_shown(page: Page) -> list[str]:
    items = page.get_by_role("list", name="Your backup codes").get_by_role("listitem")
    expect(items).to_have_count(10)
    return [text.strip() for text in items.all_inner_texts()]


def enrol(page: Page) -> Enrolled:
    """Turn on TOTP for the signed-in member from /settings/mfa/totp (works with and without JavaScript)."""
    page.goto("/settings/mfa/totp")
    page.get_by_role("switch", name="Enable").click()
    confirm_if_asked(page, page.get_by_role("img", name=QR_NAME))
    uri = parse_otpauth(read_qr(page))
    authenticator = Authenticator(uri["secret"])
    page.get_by_role("textbox", name="6-digit code").fill(authenticator.code())
    page.get_by_role("button", name="Confirm").click()
    status = page.get_by_role("status").filter(has_text="Multi-factor authentication is enabled")
    confirm_if_asked(page, status)
    return Enrolled(authenticator, backup_codes_shown(page))


# --------------------------------------------------------------------------------------------------
# Team policy (admins), with or without JavaScript
# --------------------------------------------------------------------------------------------------

REQUIRE_AGENTS = "Require MFA for agents"


def save_agent_policy(page: Page, required: bool) -> bool:
    """As a signed-in admin: set "Require MFA for agents" on Team, save it, and return what it was before.

    With JavaScript the form is swapped in place and says "Saved the security policy"; without it the save is a
    POST that redirects back to Team, where the checkbox shows what the server stored. "Confirm it's you" is
    answered with the password when it comes up (a dialog with JavaScript, a page of its own without).
    """
    page.goto("/team")
    box = page.get_by_role("checkbox", name=REQUIRE_AGENTS)
    expect(box).to_be_visible()
    before = box.is_checked()
    box.set_checked(required)
    save = page.get_by_role("button", name="Save policy")
    if getattr(page, "javascript_enabled", True):
        save.click()
        confirm_if_asked(page, page.get_by_role("status").filter(has_text="Saved the security policy"))
    else:
        with page.expect_navigation():
            save.click()
        confirm_if_asked(page, page.get_by_role("heading", name="Team", level=1))
    expect(page.get_by_role("checkbox", name=REQUIRE_AGENTS)).to_be_checked(checked=required)
    return before


@contextmanager
def agents_must_enrol(admin_page: Page) -> Iterator[None]:
    """The org-wide "Require MFA for agents" is on inside the block and as it was found afterwards.

    The policy belongs to the whole server (``policy_server``): tests that switch it on put it back, so the
    others do not depend on the order they run in.
    """
    before = save_agent_policy(admin_page, True)
    try:
        yield
    finally:
        if not before:
            save_agent_policy(admin_page, False)


def expect_signed_out(page: Page) -> None:
    """After a reload the page is the sign-in form, with no sidebar: the session was ended on the server."""
    page.reload()
    expect(page.get_by_role("textbox", name="Email")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_role("navigation", name="Sidebar")).to_have_count(0)


def expect_reset_logged(page: Page, *, email: str, admin: str) -> None:
    """Security activity lists one "MFA reset" of `email`, done by `admin`."""
    sidebar_link(page, "Security activity").click()
    expect(page.get_by_role("heading", name="Security activity", level=1)).to_be_visible()
    reset_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="MFA reset", exact=True))
    expect(reset_row.filter(has_text=email)).to_have_count(1)
    expect(reset_row.filter(has_text=email).get_by_role("cell", name=admin, exact=True)).to_be_visible()
    expect(reset_row.filter(has_text=email).get_by_role("cell", name=email, exact=True)).to_be_visible()

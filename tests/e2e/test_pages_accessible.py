"""axe-core (WCAG 2.2 AA) on the pages the other browser tests do not scan, each in the state a member meets it:
the dashboard with a security notice, Webhooks and Billing (empty, with a result, with an error), Team after
"Add a member" with its one-time link, the set-password page that link opens, Security activity filtered, the
403 page an agent gets, the 404 page, and the enrolment page the MFA policy sends an agent to.

Already scanned elsewhere, so not here: login (and its error), the second step, Settings with the MFA section
collapsed and expanded, enrolment states (test_enrolment.py), the "Confirm it's you" dialog (test_stepup.py),
Team and unfiltered Security activity (test_policy.py). JavaScript is on throughout: axe needs it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .flows import (
    agents_must_enrol,
    enrol,
    expect_accessible,
    fill_sign_in,
    new_member,
    sidebar_link,
    sign_in,
    unique_email,
)
from .support import LiveServer

pytestmark = pytest.mark.e2e

HOOK = "https://93.184.215.14/hook"  # a public address: there is no DNS here, and internal ones are refused
SET_PASSWORD_LINK = re.compile(r"https?://\S+/set-password/\S+")


def _expect_invalid(page: Page, textbox_name: str, message: str) -> None:
    """The field is marked invalid and a message matching ``message`` is among those aria-describedby names."""
    box = page.get_by_role("textbox", name=textbox_name)
    expect(box).to_have_attribute("aria-invalid", "true")
    ids = (box.get_attribute("aria-describedby") or "").split()
    texts = [page.locator(f"[id='{ident}']").inner_text() for ident in ids]
    assert any(re.search(message, t, re.I) for t in texts), f"no {message!r} tied to {textbox_name!r}: {texts}"


def _settings_section(page: Page, name: str) -> None:
    sidebar_link(page, "Settings").click()
    page.get_by_role("navigation", name="Settings sections").get_by_role("link", name=name, exact=True).click()


def test_admin_pages_are_accessible(page: Page, new_page: Callable[..., Page], live_server: LiveServer) -> None:
    admin = new_member(live_server, "a11y-admin", role="admin")
    sign_in(page, admin)
    enrol(page)

    # -- Dashboard with a security notice -------------------------------------------------------------------
    sidebar_link(page, "Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    notices = page.get_by_role("region", name="Security notices").get_by_role("listitem")
    turned_on = notices.filter(has_text="Multi-factor authentication was turned on")
    expect(turned_on).to_have_count(1)
    expect_accessible(page, "dashboard with a security notice")
    # The notice is stamped with the server's UTC time of the change: the day the activity filter below uses
    # (the test's own clock could have passed midnight since).
    stamped = re.search(r"\((\d{4}-\d{2}-\d{2}) \d{2}:\d{2} UTC", turned_on.inner_text())
    assert stamped, turned_on.inner_text()

    # -- Settings › Webhooks: empty, one added (with its signing secret), an invalid URL ---------------------
    # Webhooks belong to the organisation; no other test adds any on live_server.
    _settings_section(page, "Webhooks")
    url_box = page.get_by_role("textbox", name="Webhook URL")
    expect(url_box).to_be_visible()
    expect(page.get_by_text("No webhooks yet.")).to_be_visible()
    expect_accessible(page, "webhooks, none yet")

    url_box.fill(HOOK)
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_role("cell", name=HOOK, exact=True)).to_be_visible()
    added = page.get_by_role("status")
    expect(added).to_contain_text(f"Added a webhook for {HOOK}")
    expect(added).to_contain_text("signing secret is shown only now")
    expect_accessible(page, "webhooks, one added with its signing secret")

    url_box.fill("http://x")
    page.get_by_role("button", name="Add webhook").click()
    _expect_invalid(page, "Webhook URL", r"https://")
    expect(page.get_by_role("cell", name="http://x", exact=True)).to_have_count(0)
    expect_accessible(page, "webhooks, invalid URL")

    # -- Settings › Billing: as it is, then an invalid billing email -------------------------------------------
    page.get_by_role("navigation", name="Settings sections").get_by_role("link", name="Billing").click()
    email_box = page.get_by_role("textbox", name="Billing email")
    expect(email_box).to_be_visible()
    expect_accessible(page, "billing")
    email_box.fill("not an email")
    page.get_by_role("button", name="Save billing details").click()
    _expect_invalid(page, "Billing email", r"email address")
    expect(page.get_by_role("status")).to_have_count(0)
    expect_accessible(page, "billing, invalid billing email")

    # -- Team after "Add a member": a second member row and the one-time link ---------------------------------
    sidebar_link(page, "Team").click()
    expect(page.get_by_role("heading", name="Team", level=1)).to_be_visible()
    newcomer = unique_email("a11y-new")
    add = page.get_by_role("region", name="Add a member")
    add.get_by_role("textbox", name="Email").fill(newcomer)
    add.get_by_role("combobox", name="Role", exact=True).select_option(label="Agent")
    add.get_by_role("button", name="Add member").click()
    result = page.get_by_role("status").filter(has_text=f"Added {newcomer}")
    expect(result).to_contain_text("one-time link")
    expect(page.get_by_role("rowheader", name=newcomer, exact=True)).to_be_visible()
    expect(page.get_by_role("rowheader", name=admin, exact=True)).to_be_visible()
    found = SET_PASSWORD_LINK.search(result.inner_text())
    assert found, result.inner_text()
    expect_accessible(page, "team with the one-time link")

    # -- the set-password page, opened from that link in a browser that is signed in as nobody -------------------
    invitee = new_page()
    invitee.goto(found.group(0))
    expect(invitee.get_by_role("heading", name="Choose a password", level=1)).to_be_visible()
    expect(invitee.get_by_role("navigation", name="Sidebar")).to_have_count(0)
    expect_accessible(invitee, "set-password page")
    invitee.get_by_role("textbox", name="Password").fill("short")
    invitee.get_by_role("button", name="Set password").click()
    _expect_invalid(invitee, "Password", r"at least \d+ characters")
    expect_accessible(invitee, "set-password page, password too short")

    # -- Security activity with filters applied -----------------------------------------------------------------
    sidebar_link(page, "Security activity").click()
    expect(page.get_by_role("heading", name="Security activity", level=1)).to_be_visible()
    page.get_by_role("combobox", name="Member").select_option(label=admin)
    page.get_by_role("combobox", name="Event").select_option(label="MFA enabled")
    page.get_by_label("Date (UTC)").fill(stamped.group(1))
    page.get_by_role("button", name="Filter").click()
    rows = page.get_by_role("table").get_by_role("row").filter(has=page.get_by_role("cell"))
    expect(rows).to_have_count(1)
    expect(rows.get_by_role("cell", name="MFA enabled", exact=True)).to_be_visible()
    expect(page.get_by_role("combobox", name="Event")).to_have_value("mfa_enabled")
    expect_accessible(page, "security activity, filtered")

    # -- the 404 page ---------------------------------------------------------------------------------------------
    response = page.goto("/no-such-page")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found", level=1)).to_be_visible()
    expect_accessible(page, "404 page")


def test_agent_403_page_is_accessible(page: Page, live_server: LiveServer) -> None:
    agent = new_member(live_server, "a11y-agent", role="agent")
    sign_in(page, agent)
    response = page.goto("/settings/webhooks")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Access denied", level=1)).to_be_visible()
    expect_accessible(page, "403 page for an agent")


def test_policy_enrolment_page_is_accessible(
    page: Page, new_page: Callable[..., Page], policy_server: LiveServer
) -> None:
    admin = new_member(policy_server, "a11y-policy-admin", role="admin")
    agent = new_member(policy_server, "a11y-policy-agent", role="agent")
    sign_in(page, admin)
    with agents_must_enrol(page):
        member = new_page()
        fill_sign_in(member, agent)
        expect(member).to_have_url(re.compile(r"/settings/mfa/totp$"))
        expect(member.get_by_role("switch", name="Enable")).to_have_attribute("aria-checked", "false")
        expect_accessible(member, "enrolment required by the policy")


# --------------------------------------------------------------------------------------------------
# Found while scanning Billing: what the axe rules cannot see
# --------------------------------------------------------------------------------------------------


def _refused_billing_save(page: Page, live_server: LiveServer) -> None:
    """As an admin (fresh from the password, so no "Confirm it's you"): choose another plan, type an invalid
    billing email, press "Save billing details", and wait for the refusal."""
    sign_in(page, new_member(live_server, "a11y-billing", role="admin"))
    _settings_section(page, "Billing")
    page.get_by_role("radio", name="Business").check()
    page.get_by_role("textbox", name="Billing email").fill("not an email")
    page.get_by_role("button", name="Save billing details").click()
    expect(page.get_by_role("textbox", name="Billing email")).to_have_attribute("aria-invalid", "true")


def test_refused_billing_save_keeps_what_was_typed(page: Page, live_server: LiveServer) -> None:
    _refused_billing_save(page, live_server)
    expect(page.get_by_role("textbox", name="Billing email")).to_have_value("not an email", timeout=1500)
    expect(page.get_by_role("radio", name="Business")).to_be_checked(timeout=500)


def test_refused_billing_save_keeps_focus(page: Page, live_server: LiveServer) -> None:
    _refused_billing_save(page, live_server)
    # Somewhere sensible (the invalid field, the button pressed, the error) rather than nowhere: <body> never
    # matches :focus, so this polls until some element has focus.
    expect(page.locator(":focus")).to_have_count(1, timeout=1500)

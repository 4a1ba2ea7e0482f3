"""Passkeys in Chromium with the DevTools virtual authenticator (CTAP2, resident keys, user verification).

Register, name, list, use at the second step, sign in with no password, step-up with resume, remove; and the
refusals: no user verification at passwordless sign-in, a credential removed on the server, a replayed answer,
an answer made for another origin. Each refusal shows a message and signs nobody in; axe runs in each state.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .flows import (
    STEPUP_WINDOW,
    confirm_if_asked,
    expect_accessible,
    fill_sign_in,
    new_member,
    reauth_dialog,
    sign_in,
    sign_out,
)
from .support import REPO_ROOT, LiveServer, free_port, stop_process, wait_for_http_ok

pytestmark = pytest.mark.e2e
REFUSED = "Incorrect email or password."
# The virtual authenticator answers an autofill (conditional) request at once, as if the member had picked the
# passkey from the email field's suggestions; tests switch that on only where they mean to.
CONDITIONAL_SWITCH = """
if (window.PublicKeyCredential && PublicKeyCredential.isConditionalMediationAvailable) {
  const available = PublicKeyCredential.isConditionalMediationAvailable.bind(PublicKeyCredential);
  PublicKeyCredential.isConditionalMediationAvailable = async () =>
    localStorage.getItem("conditional") === "on" && available();
}
"""


def authenticator(page: Page) -> tuple[object, str]:
    """A platform authenticator that keeps discoverable credentials and verifies the user (a fingerprint)."""
    page.context.add_init_script(CONDITIONAL_SWITCH)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    found = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, found["authenticatorId"]


def add_passkey(page: Page, name: str, start: str = "/settings?section=mfa") -> None:
    page.goto(start)
    page.get_by_role("button", name="Add a passkey").click()
    create = page.get_by_role("button", name="Create passkey")
    confirm_if_asked(page, create)
    expect_accessible(page, "passkey about to be created")
    create.click()
    box = page.get_by_role("textbox", name="Passkey name")
    confirm_if_asked(page, box)  # on a server with a 2-second window, the check may lapse meanwhile
    expect(box).not_to_have_value("")
    expect_accessible(page, "new passkey being named")
    box.fill(name)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("button", name=f"Remove {name}")).to_be_visible()


def passkey_sign_in(page: Page) -> None:
    page.goto("/login")
    page.get_by_role("button", name="Sign in with a passkey").click()


def expect_refused(page: Page) -> None:
    expect(page.get_by_text(REFUSED)).to_be_visible()
    expect(page.get_by_role("navigation", name="Sidebar")).to_have_count(0)


def test_passkey_from_adding_to_removing(page: Page, live_server: LiveServer) -> None:
    cdp, authenticator_id = authenticator(page)
    email = new_member(live_server, "passkey")
    sign_in(page, email)
    add_passkey(page, "Work laptop")
    expect(page.get_by_text("not used yet")).to_be_visible()
    expect(page.get_by_text("1 passkey", exact=True)).to_be_visible()
    expect_accessible(page, "passkeys listed")

    sign_out(page)  # the second step: a passkey alone is the member's MFA
    fill_sign_in(page, email)
    expect(page.get_by_role("heading", name="Two-step verification")).to_be_visible()
    expect_accessible(page, "second step with a passkey")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("navigation", name="Sidebar")).to_be_visible()

    sign_out(page)  # no email, no password
    expect_accessible(page, "sign-in page with a passkey button")
    passkey_sign_in(page)
    expect(page.get_by_role("navigation", name="Sidebar")).to_be_visible()

    sign_out(page)  # the authenticator doesn't verify the user: refused
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator_id, "isUserVerified": False})  # type: ignore[attr-defined]
    passkey_sign_in(page)  # the browser itself refuses when user verification is required and fails
    expect(page.get_by_text(re.compile(r"cancelled or timed out|" + re.escape(REFUSED)))).to_be_visible()
    expect(page.get_by_role("navigation", name="Sidebar")).to_have_count(0)
    expect_accessible(page, "passkey sign-in refused")
    cdp.send("WebAuthn.setUserVerified", {"authenticatorId": authenticator_id, "isUserVerified": True})  # type: ignore[attr-defined]

    page.evaluate("localStorage.setItem('conditional', 'on')")  # autofill: choosing the passkey signs in
    page.goto("/login")
    expect(page.get_by_role("navigation", name="Sidebar")).to_be_visible()
    page.evaluate("localStorage.removeItem('conditional')")
    page.goto("/settings/mfa/passkeys")
    page.get_by_role("button", name="Rename Work laptop").click()
    page.get_by_role("textbox", name="Passkey name").fill("Desk")
    page.get_by_role("button", name="Save", exact=True).click()
    page.get_by_role("button", name="Remove Desk").click()
    expect(page.get_by_role("status").filter(has_text="Passkey removed.")).to_be_visible()
    expect(page.get_by_text("0 passkeys", exact=True)).to_be_visible()

    sign_out(page)  # the authenticator still holds it; the server doesn't
    passkey_sign_in(page)
    expect_refused(page)


def test_passkey_answer_replayed_or_for_another_origin(page: Page, live_server: LiveServer) -> None:
    authenticator(page)
    email = new_member(live_server, "replay")
    sign_in(page, email)
    add_passkey(page, "Phone")
    sign_out(page)

    def twice(route) -> None:  # noqa: ANN001 - the first answer is spent, the same one again is shown
        route.fetch()
        route.fulfill(response=route.fetch())

    page.route("**/login/passkey", twice)
    passkey_sign_in(page)
    expect_refused(page)
    page.unroute("**/login/passkey")

    port = free_port()  # the same app and database on another port, still expecting the first origin
    env = dict(live_server.env, PORT=str(port))
    other = f"http://localhost:{port}"
    with (live_server.data_dir / "other.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "web", "serve"], cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    try:
        wait_for_http_ok(f"{other}/healthz", proc, timeout=60)
        page.goto(f"{other}/login")
        page.get_by_role("button", name="Sign in with a passkey").click()
        expect_refused(page)
    finally:
        stop_process(proc)


def test_step_up_with_a_passkey_resumes_the_webhook(page: Page, stepup_server: LiveServer) -> None:
    authenticator(page)
    email = new_member(stepup_server, "stepup-passkey", role="admin")
    sign_in(page, email)
    add_passkey(page, "Laptop")
    page.goto("/settings/webhooks")
    dialog = reauth_dialog(page)
    url_box = page.get_by_role("textbox", name="Webhook URL")
    expect(url_box.or_(dialog).first).to_be_visible()
    if dialog.is_visible():
        dialog.get_by_role("button", name="Use a passkey").click()
    hook = "https://93.184.215.14/passkey-hook"  # a public address: the browser tests run without DNS
    url_box.fill(hook)
    page.wait_for_timeout((STEPUP_WINDOW + 0.5) * 1000)  # the one deliberate pause: the window must pass
    page.get_by_role("button", name="Add webhook").click()
    expect(dialog).to_be_visible()
    expect_accessible(page, "step-up dialog with a passkey")
    dialog.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("cell", name=hook, exact=True)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/settings/webhooks$"))


def test_a_passkey_alone_meets_the_policy_and_reset_removes_it(
    page: Page, new_page: Callable[..., Page], policy_server: LiveServer
) -> None:
    """The policy is met by a passkey alone (no authenticator app), the Team page counts it as MFA, and an
    admin's "Reset MFA" removes it: the member is back at enrolment, with no passkey."""
    admin = new_member(policy_server, "pk-policy-admin", role="admin")
    agent = new_member(policy_server, "pk-policy-agent")
    sign_in(page, admin)
    page.goto("/team")
    page.get_by_role("checkbox", name="Require MFA for agents").check()
    page.get_by_role("button", name="Save policy").click()
    confirm_if_asked(page, page.get_by_role("status").filter(has_text="Saved the security policy"))

    member = new_page()
    authenticator(member)
    fill_sign_in(member, agent)
    expect(member).to_have_url(re.compile(r"/settings/mfa/totp$"))  # held at enrolment by the policy
    add_passkey(member, "Phone", start="/settings/mfa/totp")
    member.goto("/")
    expect(member).to_have_url(re.compile(r"/$"))  # a passkey alone meets the policy
    expect_accessible(member, "dashboard of a member whose only factor is a passkey")

    page.goto("/team")
    row = page.get_by_role("row").filter(has_text=agent)
    expect(row.get_by_role("cell", name="On", exact=True)).to_be_visible()
    row.get_by_role("button", name=f"Reset MFA for {agent}").click()
    confirm_if_asked(page, page.get_by_role("status").filter(has_text="Reset multi-factor authentication"))
    expect(page.get_by_role("row").filter(has_text=agent).get_by_role("cell", name="Off", exact=True)).to_be_visible()

    member.goto("/")
    expect(member).to_have_url(re.compile(r"/login"))  # the reset ended the member's sessions
    fill_sign_in(member, agent)
    expect(member).to_have_url(re.compile(r"/settings/mfa/totp$"))
    expect(member.get_by_text("0 passkeys", exact=True)).to_be_visible()

    page.goto("/team")  # the policy is org-wide on this shared server: leave it off, as the policy tests expect
    page.get_by_role("checkbox", name="Require MFA for agents").uncheck()
    page.get_by_role("button", name="Save policy").click()
    confirm_if_asked(page, page.get_by_role("status").filter(has_text="Saved the security policy"))

"""Passkeys: Settings › Multi-Factor Authentication › Passkeys (add, rename, remove), and signing in with one.

The browser's part is static/passkeys.js: it reads the options JSON from a `<script type="application/json">`
block, asks the authenticator, and posts the result in an ordinary form. Each ceremony's challenge handle
waits in the cookie session under `passkey.<purpose>` and is removed when the answer comes back.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from db import mfa_passkeys, signin_passkey
from db.errors import DomainError
from db.factors import Ceremony, passkeys
from db.i18n import _
from web import signed_in
from web.guards import Context, guarded
from web.safety import safe_next
from web.templating import render, url_path

PAGE, SECTION = "account/settings.html", "account/_mfa_section.html"
RESPONSE_LIMIT = 16_384  # a browser's credential JSON is a few kilobytes
KEY = "passkey.{}"  # + register | second_step | step_up | sign_in


def relying_party(ctx: Context) -> tuple[str, str]:
    return passkeys.relying_party(ctx.settings.public_url)


async def request_options(ctx: Context, purpose: str, user: Any = None) -> dict[str, Any]:
    """Options for navigator.credentials.get(); the challenge's handle goes into the cookie session."""
    rp_id, _ = relying_party(ctx)
    options, handle = await ctx.run(passkeys.authentication_options, user=user, purpose=purpose, rp_id=rp_id)
    return keep_challenge(ctx, purpose, options, handle)


def keep_challenge(ctx: Context, purpose: str, options: str, handle: str) -> dict[str, Any]:
    """The challenge's handle goes into the cookie session; the options (JSON) are for the page's script."""
    ctx.session[KEY.format(purpose)] = handle
    parsed: dict[str, Any] = json.loads(options)
    return parsed


def ceremony(ctx: Context, purpose: str) -> Ceremony:
    """The answer's context: the handle is taken out of the cookie session, so it can't be sent twice."""
    rp_id, origin = relying_party(ctx)
    return Ceremony(str(ctx.session.pop(KEY.format(purpose), "")), rp_id, origin)


def credential(ctx: Context, name: str = "credential") -> str:
    return ctx.field(name, RESPONSE_LIMIT)


async def panel(ctx: Context, *, status_code: int = 200, redirect: str | None = None, **extra: Any) -> Response:
    rows = await ctx.run(passkeys.list_passkeys, user_id=ctx.member.user.id)
    context = {"expanded": True, "panel": "passkeys", "passkeys": rows, "creation": None, "renaming": None}
    context |= {"error": None, "passkey_status": None} | extra
    return render(ctx.request, PAGE, SECTION, context, status_code=status_code, redirect=redirect)


@guarded(enrolling=True)
async def show_passkeys(ctx: Context) -> Response:
    query = ctx.request.query_params
    renaming = int(query["rename"]) if query.get("rename", "").isdigit() else None
    status = _("Passkey added. You can give it a name.") if query.get("status") == "added" else None
    return await panel(ctx, renaming=renaming, passkey_status=status)


@guarded(enrolling=True, step_up=True)
async def start_passkey(ctx: Context) -> Response:
    """ "Add a passkey": creation options for this member, behind a fresh "Confirm it's you"."""
    rp_id, _ = relying_party(ctx)
    user, name = ctx.member.user, ctx.settings.app_name
    options, handle = await ctx.run(passkeys.registration_options, user=user, rp_id=rp_id, rp_name=name)
    ctx.session[KEY.format("register")] = handle
    return await panel(ctx, creation=json.loads(options))


@guarded(enrolling=True, step_up=True)
async def add_passkey(ctx: Context) -> Response:
    found = ceremony(ctx, "register")
    try:
        added = await ctx.run(
            mfa_passkeys.add_passkey,
            user=ctx.member.user,
            handle=found.handle,
            response_json=credential(ctx),
            rp_id=found.rp_id,
            origin=found.origin,
        )
    except DomainError as error:
        return await panel(ctx, error=error.message, status_code=error.status)
    ctx.rotate(added.session_token)
    again = url_path(ctx.request, "show_passkeys") + f"?rename={added.passkey_id}&status=added"
    status = _("Passkey added. You can give it a name.")
    return await panel(ctx, renaming=added.passkey_id, passkey_status=status, redirect=again)


@guarded(enrolling=True)
async def rename_passkey(ctx: Context) -> Response:
    passkey_id = ctx.request.path_params["id"]
    try:
        name = ctx.field("passkey_name", 256)
        await ctx.run(mfa_passkeys.rename_passkey, user=ctx.member.user, passkey_id=passkey_id, name=name)
    except DomainError as error:
        return await panel(ctx, renaming=passkey_id, error=error.message, status_code=error.status)
    return await panel(ctx, passkey_status=_("Passkey renamed."), redirect=url_path(ctx.request, "show_passkeys"))


@guarded(enrolling=True, step_up=True)
async def remove_passkey(ctx: Context) -> Response:
    passkey_id, required = ctx.request.path_params["id"], ctx.member.mfa_required
    try:
        changed = await ctx.run(
            mfa_passkeys.remove_passkey, user=ctx.member.user, passkey_id=passkey_id, required=required
        )
    except DomainError as error:
        return await panel(ctx, error=error.message, status_code=error.status)
    ctx.rotate(changed.session_token)
    return await panel(ctx, passkey_status=_("Passkey removed."), redirect=url_path(ctx.request, "show_passkeys"))


@guarded(signed_in=False)
async def sign_in_with_passkey(ctx: Context) -> Response:
    """ "Sign in with a passkey": no email, no password; every refusal reads as a wrong password."""
    next_path, found = safe_next(ctx.field("next", 600)), ceremony(ctx, "sign_in")
    try:
        done = await ctx.run(
            signin_passkey.sign_in_with_passkey,
            handle=found.handle,
            response_json=credential(ctx),
            rp_id=found.rp_id,
            origin=found.origin,
            replaces=ctx.session.get(signed_in.SID),
            checkup_days=ctx.settings.checkup_days,
        )
    except DomainError as error:
        context = {"next": next_path, "email": "", "empty": False, "error": error.message}
        context["passkey_options"] = await request_options(ctx, "sign_in")
        return render(ctx.request, "auth/login.html", None, context, status_code=error.status)
    return ctx.enter(done, next_path)

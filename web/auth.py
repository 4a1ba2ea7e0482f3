"""Signing in and out, the second step, and "Confirm it's you"."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from starlette.responses import RedirectResponse, Response

from db import second_step, signin, signin_passkey
from db.errors import DomainError
from web import passkeys, signed_in
from web.cookies import remember_name
from web.guards import Context, guarded
from web.safety import safe_next
from web.templating import navigate, render, url_path


@guarded(signed_in=False)
async def show_login(ctx: Context) -> Response:
    next_path = safe_next(ctx.request.query_params.get("next"))
    if signed_in.SID in ctx.session and not ctx.session.get(signed_in.PENDING):
        return RedirectResponse(next_path, status_code=303)
    page = await ctx.run(signin_passkey.sign_in_page, rp_id=passkeys.relying_party(ctx)[0])
    options = passkeys.keep_challenge(ctx, "sign_in", page.options, page.handle)
    context = {"next": next_path, "email": "", "error": None, "empty": page.empty, "passkey_options": options}
    return render(ctx.request, "auth/login.html", None, context)


@guarded(signed_in=False)
async def sign_in(ctx: Context) -> Response:
    email, next_path = ctx.field("email", 320), safe_next(ctx.field("next", 600))
    try:
        begun = await ctx.run(
            signin.begin,
            email=email,
            password=ctx.field("password", 1024),
            replaces=ctx.session.get(signed_in.SID),
            remembered=ctx.request.cookies.get(remember_name(ctx.request.scope)),
        )
    except DomainError as error:
        # No new passkey challenge here: a refused password changes nothing, not even the cookie.
        context = {"next": next_path, "email": email, "empty": False, "error": error.message}
        return render(ctx.request, "auth/login.html", None, context, status_code=error.status)
    ctx.start_session(begun.session_token, pending=begun.pending)
    if begun.pending:
        return RedirectResponse(url_path(ctx.request, "show_second_step") + "?next=" + quote(next_path, safe="/"), 303)
    return RedirectResponse(next_path, status_code=303)


@guarded(signed_in=False)
async def show_second_step(ctx: Context) -> Response:
    if not ctx.session.get(signed_in.PENDING):
        return RedirectResponse(url_path(ctx.request, "show_login"), status_code=303)
    query = ctx.request.query_params
    context = await second_step_context(ctx, safe_next(query.get("next")), query.get("method") == "backup")
    return render(ctx.request, "auth/challenge.html", None, context)


async def second_step_context(
    ctx: Context, next_path: str, backup: bool, error: str | None = None
) -> dict[str, object]:
    """The second step's page: the authenticator app's code (or a backup code), and passkeys if the member has
    any, each with a fresh challenge."""
    token, ttl = ctx.session.get(signed_in.SID), ctx.settings.second_step_ttl
    rp_id, _ = passkeys.relying_party(ctx)
    offer = await ctx.run(second_step.offer, token=str(token), ttl=ttl, rp_id=rp_id)
    if offer is not None and offer.handle:
        ctx.session[passkeys.KEY.format("second_step")] = offer.handle
    has_totp = offer is None or offer.has_totp
    return {"next": next_path, "backup": backup or not has_totp, "has_totp": has_totp, "error": error} | {
        "passkey_options": json.loads(offer.options) if offer is not None and offer.options else None,
        "remember_days": offer.remember_days if offer is not None else 0,  # "Remember this browser", if allowed
    }


@guarded(signed_in=False)
async def verify_second_step(ctx: Context) -> Response:
    method, next_path = ctx.field("method") or "totp", safe_next(ctx.field("next", 600))
    try:
        done = await finish_sign_in(ctx, method)
    except signin.SecondStepExpired as error:
        ctx.session.clear()
        context = {"next": "/", "email": "", "error": error.message, "empty": False}
        return render(ctx.request, "auth/login.html", None, context, status_code=422)
    except DomainError as error:
        context = await second_step_context(ctx, next_path, method == "backup", error.message)
        context["passkey_error"] = method == "passkey"
        return render(ctx.request, "auth/challenge.html", None, context, status_code=error.status)
    return ctx.enter(done, next_path)


async def finish_sign_in(ctx: Context, method: str) -> signin.Finished:
    """The second step's factor from the form (a code, a backup code or a passkey's answer), checked."""
    token = ctx.session.get(signed_in.SID)
    if not (ctx.session.get(signed_in.PENDING) and isinstance(token, str)):
        raise signin.SecondStepExpired()
    found = passkeys.ceremony(ctx, "second_step") if method == "passkey" else None
    code = passkeys.credential(ctx) if found else ctx.field("backup_code" if method == "backup" else "code", 64)
    options: dict[str, Any] = {"remember": ctx.field("remember") == "1", "checkup_days": ctx.settings.checkup_days}
    ttl = ctx.settings.second_step_ttl
    return await ctx.run(signin.finish, token=token, ttl=ttl, method=method, code=code, ceremony=found, **options)


@guarded(signed_in=False)
async def sign_out(ctx: Context) -> Response:
    token = ctx.session.get(signed_in.SID)
    if isinstance(token, str):
        try:
            ctx.member_or_none = signed_in.signed_in_member(ctx.request, enrolling=True)
        except (signed_in.NotSignedIn, signed_in.SecondStepRequired):
            pass
        await ctx.run(signin.sign_out, token=token)
    ctx.session.clear()
    response = navigate(ctx.request, url_path(ctx.request, "show_login"))
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


async def reauth_context(
    ctx: Context, *, next_path: str, method: str, replay: list[tuple[str, str]]
) -> dict[str, object]:
    backup = ctx.request.query_params.get("method") == "backup" or ctx.field("reauth_factor") == "backup"
    member = ctx.member
    options = await passkeys.request_options(ctx, "step_up", member.user) if member.passkeys else None
    return {
        "passkey_options": options,
        "next": next_path,
        "method": method,
        "replay": replay,
        "reauth_member": ctx.member,
        "error": None,
        "backup": backup,
    }


@guarded()
async def show_reauth(ctx: Context) -> Response:
    next_path = safe_next(ctx.request.query_params.get("next"), "/settings")
    context = await reauth_context(ctx, next_path=next_path, method="GET", replay=[])
    return render(ctx.request, "auth/reauth.html", "auth/_reauth_dialog.html", context)


@guarded(enrolling=True)
async def reauthenticate(ctx: Context) -> Response:
    """Check the member again, then resume: 307 replays the original POST (its fields rode along hidden).

    A member held at enrolment may confirm too: enabling MFA itself needs a fresh check.
    """
    method, next_path = ctx.field("reauth_method"), safe_next(ctx.field("reauth_next", 600), "/settings")
    factor = ctx.field("reauth_factor")
    factor = factor if factor in ("backup", "passkey") else "totp"
    found = passkeys.ceremony(ctx, "step_up") if factor == "passkey" else None  # before new options replace it
    context = await reauth_context(ctx, next_path=next_path, method=method, replay=replay_fields(ctx))
    if switch := ctx.field("reauth_switch"):  # the other factor, keeping what the member was doing
        return dialog(ctx, context | {"backup": switch == "backup"}, 200)
    try:
        secret = passkeys.credential(ctx, "reauth_credential") if found else ctx.field("reauth_secret", 1024)
        hashing = not ctx.member.mfa_enabled  # only the password (a member without MFA) is an argon2 check
        confirmed = await ctx.run(
            signin.confirm, hashing=hashing, member=ctx.member, method=factor, secret=secret, ceremony=found
        )
        ctx.rotate(confirmed)
    except DomainError as error:
        return dialog(ctx, context | {"error": error.message, "passkey_error": bool(found)}, error.status)
    if method == "POST":
        return RedirectResponse(next_path, status_code=307)
    return navigate(ctx.request, next_path)


def dialog(ctx: Context, context: dict[str, object], status: int) -> Response:
    headers = {"HX-Retarget": "#modal", "HX-Reswap": "innerHTML"}
    return render(
        ctx.request, "auth/reauth.html", "auth/_reauth_dialog.html", context, status_code=status, headers=headers
    )


def replay_fields(ctx: Context) -> list[tuple[str, str]]:
    """The fields of an interrupted POST, carried through "Confirm it's you" so it can be sent again."""
    items = ctx.form.multi_items() if ctx.form is not None else []
    return [(k, v) for k, v in items if isinstance(v, str) and not k.startswith(("reauth_", "csrf"))]

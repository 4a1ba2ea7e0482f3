"""Signing in and out, the second step, and "Confirm it's you"."""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import RedirectResponse, Response

from db import links, signin
from db.errors import DomainError
from web import guards
from web.guards import Context, guarded
from web.safety import safe_next
from web.templating import navigate, render, url_path


@guarded(signed_in=False)
async def show_login(ctx: Context) -> Response:
    next_path = safe_next(ctx.request.query_params.get("next"))
    if guards.SID in ctx.session and not ctx.session.get(guards.PENDING):
        return RedirectResponse(next_path, status_code=303)
    empty = await ctx.run(links.instance_is_empty)
    return render(ctx.request, "auth/login.html", None, {"next": next_path, "email": "", "error": None, "empty": empty})


@guarded(signed_in=False)
async def sign_in(ctx: Context) -> Response:
    email, next_path = ctx.field("email", 320), safe_next(ctx.field("next", 600))
    try:
        begun = await ctx.run(
            signin.begin, email=email, password=ctx.field("password", 1024), replaces=ctx.session.get(guards.SID)
        )
    except DomainError as error:
        context = {"next": next_path, "email": email, "empty": False, "error": error.message}
        return render(ctx.request, "auth/login.html", None, context, status_code=error.status)
    ctx.start_session(begun.session_token, pending=begun.pending)
    if begun.pending:
        return RedirectResponse(url_path(ctx.request, "show_second_step") + "?next=" + quote(next_path, safe="/"), 303)
    return RedirectResponse(next_path, status_code=303)


@guarded(signed_in=False)
async def show_second_step(ctx: Context) -> Response:
    if not ctx.session.get(guards.PENDING):
        return RedirectResponse(url_path(ctx.request, "show_login"), status_code=303)
    query = ctx.request.query_params
    context = {"next": safe_next(query.get("next")), "backup": query.get("method") == "backup", "error": None}
    return render(ctx.request, "auth/challenge.html", None, context)


@guarded(signed_in=False)
async def verify_second_step(ctx: Context) -> Response:
    method, next_path = ctx.field("method") or "totp", safe_next(ctx.field("next", 600))
    token = ctx.session.get(guards.SID)
    try:
        if not (ctx.session.get(guards.PENDING) and isinstance(token, str)):
            raise signin.SecondStepExpired()
        code = ctx.field("backup_code" if method == "backup" else "code", 64)
        ttl = ctx.settings.second_step_ttl
        days = ctx.settings.checkup_days
        done = await ctx.run(signin.finish, token=token, ttl=ttl, method=method, code=code, checkup_days=days)
    except signin.SecondStepExpired as error:
        ctx.session.clear()
        context = {"next": "/", "email": "", "error": error.message, "empty": False}
        return render(ctx.request, "auth/login.html", None, context, status_code=422)
    except DomainError as error:
        context = {"next": next_path, "backup": method == "backup", "error": error.message}
        return render(ctx.request, "auth/challenge.html", None, context, status_code=error.status)
    ctx.start_session(done.session_token)
    if done.checkup:  # asked once, before going on to where the member was going
        next_path = url_path(ctx.request, "show_checkup") + "?next=" + quote(next_path, safe="/")
    return RedirectResponse(next_path, status_code=303)


@guarded(signed_in=False)
async def sign_out(ctx: Context) -> Response:
    token = ctx.session.get(guards.SID)
    if isinstance(token, str):
        try:
            ctx.member_or_none = guards.signed_in_member(ctx.request, enrolling=True)
        except (guards.NotSignedIn, guards.SecondStepRequired):
            pass
        await ctx.run(signin.sign_out, token=token)
    ctx.session.clear()
    response = navigate(ctx.request, url_path(ctx.request, "show_login"))
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


def reauth_context(ctx: Context, *, next_path: str, method: str, replay: list[tuple[str, str]]) -> dict[str, object]:
    backup = ctx.request.query_params.get("method") == "backup" or ctx.field("reauth_factor") == "backup"
    return {
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
    context = reauth_context(ctx, next_path=next_path, method="GET", replay=[])
    return render(ctx.request, "auth/reauth.html", "auth/_reauth_dialog.html", context)


@guarded(enrolling=True)
async def reauthenticate(ctx: Context) -> Response:
    """Check the member again, then resume: 307 replays the original POST (its fields rode along hidden).

    A member held at enrolment may confirm too: enabling MFA itself needs a fresh check.
    """
    method, next_path = ctx.field("reauth_method"), safe_next(ctx.field("reauth_next", 600), "/settings")
    context = reauth_context(ctx, next_path=next_path, method=method, replay=replay_fields(ctx))
    if switch := ctx.field("reauth_switch"):  # the other factor, keeping what the member was doing
        return dialog(ctx, context | {"backup": switch == "backup"}, 200)
    try:
        factor = "backup" if ctx.field("reauth_factor") == "backup" else "totp"
        ctx.rotate(
            await ctx.run(signin.confirm, member=ctx.member, method=factor, secret=ctx.field("reauth_secret", 1024))
        )
    except DomainError as error:
        return dialog(ctx, context | {"error": error.message}, error.status)
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

"""The dashboard and Settings, with the Multi-Factor Authentication section that expands in place."""

from __future__ import annotations

from starlette.responses import PlainTextResponse, RedirectResponse, Response

from db import notices, users
from db.errors import DomainError
from web import sessions
from web.guards import Context, guarded
from web.safety import safe_next
from web.templating import render, url_path

SETTINGS, SECTION = "account/settings.html", "account/_mfa_section.html"


@guarded(signed_in=False)
async def healthz(ctx: Context) -> Response:
    return PlainTextResponse("ok")


@guarded()
async def show_dashboard(ctx: Context) -> Response:
    unread = await ctx.run(notices.unread, user_id=ctx.member.user.id)
    return render(ctx.request, "account/dashboard.html", None, {"notices": unread})


@guarded()
async def dismiss_notices(ctx: Context) -> Response:
    await ctx.run(notices.dismiss, user_id=ctx.member.user.id)
    redirect = url_path(ctx.request, "show_dashboard")
    return render(ctx.request, "account/dashboard.html", "account/_notices.html", {"notices": []}, redirect=redirect)


@guarded()
async def dismiss_policy_banner(ctx: Context) -> Response:
    """Hide the grace-period reminder for this session; it comes back at the next sign-in."""
    ctx.session["policy.banner_dismissed"] = True
    return RedirectResponse(safe_next(ctx.field("next", 600)), status_code=303)


@guarded()
async def show_settings(ctx: Context) -> Response:
    """Settings; `?section=mfa` expands the MFA section (the htmx toggle asks for just that section)."""
    query = ctx.request.query_params
    context = {
        "expanded": query.get("section") == "mfa",
        "panel": None,
        "password_changed": query.get("password") == "changed",
        "sessions_status": sessions.STATUS.get(query.get("sessions", "")),
    }
    return render(ctx.request, SETTINGS, SECTION, context)


@guarded()
async def change_password(ctx: Context) -> Response:
    """A new password ends every other session; this one continues on a new token."""
    current, new = ctx.field("current_password", 1024), ctx.field("new_password", 1024)
    try:
        ctx.rotate(await ctx.run(users.change_password, user_id=ctx.member.user.id, current=current, new=new))
    except DomainError as error:
        context = {
            "expanded": False,
            "panel": None,
            "password_errors": {error.field or "current_password": error.message},
        }
        return render(ctx.request, SETTINGS, None, context, status_code=error.status)
    return RedirectResponse(url_path(ctx.request, "show_settings") + "?password=changed", status_code=303)

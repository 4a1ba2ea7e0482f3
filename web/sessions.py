"""Settings › Sessions: the member's signed-in sessions and remembered browsers, and ending them.

Each answer is the Sessions section, alone for htmx or, after a plain form post, the Settings page again
(303). A whole page gets the lists with the member, in the one statement that loads them (web/guards.py);
after a change they are loaded again (`ctx.refresh()`)."""

from __future__ import annotations

from starlette.responses import Response

from db import devices, signin
from db.errors import DomainError
from db.i18n import _, ngettext
from web.cookies import remember_name
from web.guards import Context, guarded
from web.templating import render, url_path

PAGE, SECTION = "account/settings.html", "account/_sessions.html"
STATUS = {
    "ended": _("That session was signed out."),
    "forgotten": _("That browser was forgotten."),
    "missing": _("That session or browser was already gone."),
}


def section(ctx: Context, done: str, *, status_code: int = 200) -> Response:
    """The Sessions section after a change: with its status for htmx, a redirect that says `done` otherwise."""
    ctx.refresh()
    context = {"expanded": False, "panel": None, "sessions_status": STATUS[done]}
    redirect = url_path(ctx.request, "show_settings") + f"?sessions={done}"
    return render(ctx.request, PAGE, SECTION, context, status_code=status_code, redirect=redirect)


@guarded()
async def sign_out_session(ctx: Context) -> Response:
    """Sign out one of the member's other sessions: it is signed out at its next request."""
    try:
        await ctx.run(signin.sign_out_session, member=ctx.member, session_id=ctx.request.path_params["id"])
    except DomainError as error:
        return section(ctx, "missing", status_code=error.status)
    return section(ctx, "ended")


@guarded()
async def forget_browser(ctx: Context) -> Response:
    """Forget a remembered browser: it asks for the second step again at its next sign-in."""
    try:
        await ctx.run(devices.forget, user=ctx.member.user, browser_id=ctx.request.path_params["id"])
    except DomainError as error:
        return section(ctx, "missing", status_code=error.status)
    return section(ctx, "forgotten")


@guarded()
async def sign_out_others(ctx: Context) -> Response:
    """End every other session and forget every remembered browser (this one's too); this one continues."""
    ended = await ctx.run(signin.sign_out_others, member=ctx.member)
    ctx.refresh()
    context = {
        "expanded": False,
        "panel": None,
        "sessions_status": ngettext(
            "Signed out of %(num)d other session.", "Signed out of %(num)d other sessions.", ended
        ),
    }
    response = render(ctx.request, PAGE, SECTION, context)
    response.delete_cookie(remember_name(ctx.request.scope), path="/", secure=ctx.request.url.scheme == "https")
    return response

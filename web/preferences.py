"""Settings › Language: the member's language and time zone. A plain form (no htmx swap): the whole page
changes language, so it answers with the page again (post/redirect/get)."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from db import preferences
from db.errors import DomainError
from web.guards import Context, guarded
from web.templating import render, url_path


@guarded()
async def save_language(ctx: Context) -> Response:
    locale, zone = ctx.field("locale", 8), ctx.field("time_zone", 64) or "UTC"
    try:
        await ctx.run(preferences.save, user_id=ctx.member.user.id, locale=locale, time_zone=zone)
    except DomainError as error:
        context = {"expanded": False, "panel": None, "language_errors": {error.field or "locale": error.message}}
        return render(ctx.request, "account/settings.html", None, context, status_code=error.status)
    return RedirectResponse(url_path(ctx.request, "show_settings") + "?language=saved", status_code=303)

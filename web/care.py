"""Account care: "I have saved my backup codes", and the 2FA check-up some weeks after MFA was turned on."""

from __future__ import annotations

import dataclasses

from starlette.responses import Response

from db import care
from db.i18n import _
from web.guards import Context, guarded
from web.safety import safe_next
from web.templating import navigate, render, url_path

SETTINGS, SECTION = "account/settings.html", "account/_mfa_section.html"
CHECKUP = "mfa/checkup.html"
CODES_SAVED = _("You confirmed that you saved your backup codes.")


@guarded()
async def confirm_codes_saved(ctx: Context) -> Response:
    """Record that the member saved the codes last shown; the reminder in the Backup codes row goes."""
    await ctx.run(care.mark_codes_saved, user=ctx.member.user)
    # The page shows the member as loaded before the change; what changed is known, so no second query.
    ctx.member_or_none = ctx.request.state.member = dataclasses.replace(ctx.member, codes_saved=True)
    redirect = url_path(ctx.request, "show_settings") + "?section=mfa"
    context = {"expanded": True, "panel": None, "status": CODES_SAVED}
    return render(ctx.request, SETTINGS, SECTION, context, redirect=redirect)


@guarded()
async def show_checkup(ctx: Context) -> Response:
    """Still have your authenticator and backup codes? Asked once, right after a sign-in (db/signin.py)."""
    next_path = safe_next(ctx.request.query_params.get("next"))
    return render(ctx.request, CHECKUP, None, {"next": next_path})


@guarded()
async def complete_checkup(ctx: Context) -> Response:
    await ctx.run(care.complete_checkup, user=ctx.member.user)
    return navigate(ctx.request, safe_next(ctx.field("next", 600)))

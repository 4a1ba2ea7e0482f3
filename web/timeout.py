"""The session timeout warning (WCAG 2.2.1 Timing Adjustable): what the page tells static/timeout.js about
the time left, and "Stay signed in", which starts the idle clock again. The absolute lifetime can't be
extended (security requirement 25); the warning says so when that one comes first."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from web.guards import Context, guarded
from web.safety import safe_next
from web.signed_in import PENDING, SEEN, SID, SINCE, stale_after
from web.templating import wants_partial


def session_timer(request: Request) -> dict[str, int] | None:
    """Seconds until this signed-in session ends for inactivity (`idle`) and in any case (`absolute`), for
    the <body> data attributes. `renewed` is the least that any later request leaves: the idle stamp is
    refreshed only once it is older than `stale_after`. None when nobody is signed in."""
    session, config = request.session, request.app.state.settings
    if not isinstance(session.get(SID), str) or session.get(PENDING):
        return None
    at = time.time()
    idle = config.idle_timeout - (at - float(session.get(SEEN, 0)))
    absolute = config.absolute_timeout - (at - float(session.get(SINCE, 0)))
    return {
        "idle": max(0, int(idle)),
        "absolute": max(0, int(absolute)),
        "timeout": config.idle_timeout,
        "renewed": int(config.idle_timeout - stale_after(config)),
        "warning": min(config.idle_warning, config.idle_timeout),
        "minutes": max(1, -(-min(config.idle_warning, config.idle_timeout) // 60)),
    }


@guarded()
async def extend_session(ctx: Context) -> Response:
    """ "Stay signed in": 204 for the script, back to the page for a plain form post. Not a security event:
    it changes no privilege, and any other request would have refreshed the same stamp."""
    await ctx.keep_alive()
    if wants_partial(ctx.request) or ctx.request.headers.get("X-Requested-With") == "fetch":
        return Response(status_code=204)
    return RedirectResponse(safe_next(ctx.field("next", 600)), status_code=303)

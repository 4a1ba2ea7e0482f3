"""The dashboard and Settings, with the Multi-Factor Authentication section that expands in place."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from db import login, notices
from web import guards
from web.templating import render


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def show_dashboard(request: Request) -> Response:
    member = guards.member(request)
    with guards.db(request) as session:
        unread = notices.unread(session, user_id=member.user.id or 0)
    return render(request, "account/dashboard.html", None, {"notices": unread})


async def dismiss_notices(request: Request) -> Response:
    member = guards.member(request)
    with guards.db(request) as session:
        notices.dismiss(session, user_id=member.user.id or 0)
    return (
        render(request, "account/dashboard.html", "account/_notices.html", {"notices": []})
        if request.headers.get("HX-Request")
        else RedirectResponse("/", status_code=303)
    )


def settings_context(request: Request, *, expanded: bool, panel: str | None = None) -> dict[str, object]:
    return {"expanded": expanded, "panel": panel}


async def show_settings(request: Request) -> Response:
    """Settings; `?section=mfa` expands the MFA section (the htmx toggle asks for just that section)."""
    guards.member(request)
    expanded = request.query_params.get("section") == "mfa"
    return render(request, "account/settings.html", "account/_mfa_section.html", {"expanded": expanded, "panel": None})


async def sign_out_others(request: Request) -> Response:
    member = guards.member(request)
    with guards.db(request) as session:
        ended = login.end_other_sessions(session, member=member, actor=guards.actor(request, member))
    context = {"expanded": True, "panel": None, "status": f"Signed out of {ended} other session(s)."}
    return render(request, "account/settings.html", "account/_mfa_section.html", context)

"""The dashboard and Settings, with the Multi-Factor Authentication section that expands in place."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from db import login, notices, users
from db.throttle import Throttled
from web import guards
from web.forms import field, throttled_message
from web.offload import hashing
from web.safety import safe_next
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


async def dismiss_policy_banner(request: Request) -> Response:
    """Hide the grace-period reminder for this session; it comes back at the next sign-in."""
    guards.member(request)
    form = await request.form()
    request.session["policy.banner_dismissed"] = True
    return RedirectResponse(safe_next(field(form, "next", 600)), status_code=303)


async def show_settings(request: Request) -> Response:
    """Settings; `?section=mfa` expands the MFA section (the htmx toggle asks for just that section)."""
    guards.member(request)
    expanded = request.query_params.get("section") == "mfa"
    context = {
        "expanded": expanded,
        "panel": None,
        "password_changed": request.query_params.get("password") == "changed",
    }
    return render(request, "account/settings.html", "account/_mfa_section.html", context)


async def change_password(request: Request) -> Response:
    """A new password ends every other session; this one continues on a new token."""
    member = guards.member(request)
    form = await request.form()
    config = guards.settings(request)
    context: dict[str, object] = {"expanded": False, "panel": None}
    try:
        with guards.db(request) as session:
            token = await hashing(
                request,
                users.change_password,
                session=session,
                user=member.user,
                current=field(form, "current_password", 1024),
                new=field(form, "new_password", 1024),
                hasher=config.password_hasher,
                actor=guards.actor(request, member),
            )
    except users.IncorrectPassword:
        context["password_errors"] = {"current_password": "Incorrect password."}
        return render(request, "account/settings.html", None, context, status_code=422)
    except users.InvalidInput as exc:
        context["password_errors"] = {"new_password": exc.message}
        return render(request, "account/settings.html", None, context, status_code=422)
    except Throttled as exc:
        context["password_errors"] = {"current_password": throttled_message(exc)}
        return render(request, "account/settings.html", None, context, status_code=429)
    request.session[guards.SID] = token
    return RedirectResponse("/settings?password=changed", status_code=303)


async def sign_out_others(request: Request) -> Response:
    member = guards.member(request)
    with guards.db(request) as session:
        ended = login.end_other_sessions(session, member=member, actor=guards.actor(request, member))
    context = {"expanded": True, "panel": None, "status": f"Signed out of {ended} other session(s)."}
    return render(request, "account/settings.html", "account/_mfa_section.html", context)

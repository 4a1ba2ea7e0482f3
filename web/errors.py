"""Turning refusals into answers: a page for a browser, a fragment (or a navigation) for htmx.

htmx 4 swaps 4xx and 5xx bodies, so every error body is a short, generic fragment or page; nothing here
ever shows a traceback, SQL or the input that caused it.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Receive, Scope, Send

from db import events
from db.engine import open_session
from db.errors import DomainError
from db.i18n import _
from web import guards, signed_in
from web.auth import dialog, reauth_context, replay_fields
from web.protect import apply_security_headers, refusal
from web.safety import safe_next
from web.templating import navigate, render, url_path, wants_partial

MESSAGES = {
    400: _("The request could not be understood."),
    403: _("You don't have access to this."),
    404: _("There is nothing at this address."),
    405: _("That action isn't available here."),
    413: _("That request is too large."),
    415: _("That kind of request isn't accepted here."),
    429: _("Too many attempts. Please wait and try again."),
    500: _("Something went wrong on our side. Please try again."),
}
REFUSALS = {
    "too_large": _("That request is too large."),
    "cross-site request": _("This request came from another site, so it was refused."),
    "foreign origin": _("This request came from another site, so it was refused."),
    "missing or wrong CSRF token": _("Your form expired. Reload the page and try again."),
}


def error_response(request: Request, status: int, message: str | None = None) -> Response:
    text = message or MESSAGES.get(status, MESSAGES[400])
    context = {"status": status, "message": text, "title": _("Error")}
    return render(request, "errors/error.html", "errors/_alerts.html", context, status_code=status)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code == 403 and exc.detail != "Forbidden" else None
    response = error_response(request, exc.status_code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def server_error(request: Request, exc: Exception) -> Response:
    """The last resort. Runs outside the middleware stack, so it adds the security headers itself."""
    response = error_response(request, 500)
    apply_security_headers(MutableHeaders(raw=response.raw_headers), request.scope)
    return response


async def not_signed_in(request: Request, exc: Exception) -> Response:
    target = url_path(request, "show_login") + "?next=" + quote(safe_next(request.url.path), safe="/")
    return navigate(request, target, status=401)


async def second_step_required(request: Request, exc: Exception) -> Response:
    return navigate(request, url_path(request, "show_second_step"), status=401)


async def enrolment_required(request: Request, exc: Exception) -> Response:
    return navigate(request, url_path(request, "show_totp"), status=403)


async def reauth_required(request: Request, exc: Exception) -> Response:
    """Ask "Confirm it's you": a dialog for htmx, a page otherwise; the original request resumes after."""
    target = safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if request.method == "GET" and not wants_partial(request):
        return RedirectResponse(url_path(request, "show_reauth") + "?next=" + quote(target, safe="/?=&"), 303)
    form = await request.form() if request.method == "POST" else None
    ctx = guards.Context(request, signed_in.signed_in_member(request, enrolling=True), form)
    context = await reauth_context(ctx, next_path=target, method=request.method, replay=replay_fields(ctx))
    if wants_partial(request):
        return dialog(ctx, context, 200)
    return render(request, "auth/reauth.html", None, context)


async def domain_error(request: Request, exc: Exception) -> Response:
    """A refusal no route re-rendered itself (an unknown webhook id, say): its page, with its status."""
    assert isinstance(exc, DomainError)
    return error_response(request, exc.status, exc.message)


async def refused(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer of `protect.RequestGuard`: 413 or 403, logged when it looks like forgery."""
    request = Request(scope, receive)
    status, reason = refusal(request)
    if status == 403:
        ip = request.client.host if request.client else ""
        actor = events.Actor(None, "", ip, request.headers.get("user-agent", "")[:255])
        with open_session(request.app.state.engine) as session:
            events.record(session, "csrf_refused", actor=actor, outcome="failure", detail=reason)
            session.commit()
    response = error_response(request, status, REFUSALS.get(reason))
    await response(scope, receive, send)

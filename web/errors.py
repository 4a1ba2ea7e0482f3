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

from db import events
from web import guards
from web.protect import apply_security_headers, refusal
from web.safety import safe_next
from web.templating import render, wants_partial

MESSAGES = {
    400: "The request could not be understood.",
    403: "You don't have access to this.",
    404: "There is nothing at this address.",
    405: "That action isn't available here.",
    413: "That request is too large.",
    415: "That kind of request isn't accepted here.",
    429: "Too many attempts. Please wait and try again.",
    500: "Something went wrong on our side. Please try again.",
}
REFUSALS = {
    "too_large": "That request is too large.",
    "cross-site request": "This request came from another site, so it was refused.",
    "foreign origin": "This request came from another site, so it was refused.",
    "missing or wrong CSRF token": "Your form expired. Reload the page and try again.",
}


def error_response(request: Request, status: int, message: str | None = None) -> Response:
    text = message or MESSAGES.get(status, MESSAGES[400])
    context = {"status": status, "message": text, "title": "Error"}
    return render(request, "errors/error.html", "errors/_alerts.html", context, status_code=status)


def navigate(request: Request, url: str, *, status: int = 303) -> Response:
    """Go to `url`: a redirect for a browser, HX-Redirect for htmx (which never follows a 3xx into a swap)."""
    if request.headers.get("HX-Request") == "true":
        code = status if status >= 400 else 200
        return Response(status_code=code, headers={"HX-Redirect": url, "Vary": "HX-Request, HX-Request-Type"})
    return RedirectResponse(url, status_code=303)


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
    target = "/login?next=" + quote(safe_next(request.url.path), safe="/")
    return navigate(request, target, status=401)


async def second_step_required(request: Request, exc: Exception) -> Response:
    return navigate(request, "/login/verify", status=401)


async def enrolment_required(request: Request, exc: Exception) -> Response:
    return navigate(request, "/settings/mfa/totp", status=403)


async def reauth_required(request: Request, exc: Exception) -> Response:
    """Ask "Confirm it's you": a dialog for htmx, a page otherwise; the original request resumes after."""
    target = safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if request.method == "GET" and not wants_partial(request):
        return RedirectResponse("/reauth?next=" + quote(target, safe="/?=&"), status_code=303)
    replay = replay_fields(await request.form()) if request.method == "POST" else []
    member = guards.member(request, enrolling=True)
    context = {"next": target, "method": request.method, "replay": replay, "reauth_member": member, "error": None}
    if wants_partial(request):
        headers = {"HX-Retarget": "#modal", "HX-Reswap": "innerHTML"}
        return render(request, "auth/reauth.html", "auth/_reauth_dialog.html", context, headers=headers)
    return render(request, "auth/reauth.html", None, context)


def replay_fields(form: object) -> list[tuple[str, str]]:
    """The fields of an interrupted POST, carried through "Confirm it's you" so it can be sent again."""
    items = form.multi_items()  # type: ignore[attr-defined]
    return [(k, v) for k, v in items if isinstance(v, str) and not k.startswith(("reauth_", "csrf"))]


async def refused(scope: object, receive: object, send: object) -> None:
    """The answer of `protect.RequestGuard`: 413 or 403, logged when it looks like forgery."""
    request = Request(scope, receive)  # type: ignore[arg-type]
    status, reason = refusal(request)
    if status == 403:
        with guards.db(request) as session:
            events.record(session, "csrf_refused", actor=guards.actor(request), outcome="failure", detail=reason)
            session.commit()
    response = error_response(request, status, REFUSALS.get(reason))
    await response(scope, receive, send)  # type: ignore[arg-type]

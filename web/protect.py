"""Request guards that hold for every route: body size, CSRF (token plus Fetch Metadata and Origin), and
the security headers on every response, including static files and errors."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_KEY = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def csrf_token(session: dict[str, object]) -> str:
    """This session's CSRF token, made on first use; a new session (sign-in) gets a new one."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def apply_security_headers(headers: MutableHeaders, scope: Scope) -> None:
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["X-Frame-Options"] = "DENY"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
    if scope.get("scheme") == "https":
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if "cache-control" not in headers:
        headers["Cache-Control"] = "no-store"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                apply_security_headers(MutableHeaders(scope=message), scope)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestGuard:
    """Refuses oversized bodies (413) and unsafe requests without this session's CSRF token (403).

    The body is read here (to find the token in a plain form) and handed on unchanged, so routes still
    `await request.form()`. The token is taken from the `X-CSRF-Token` header (htmx) or the form body,
    never from the query string.
    """

    def __init__(self, app: ASGIApp, *, max_body: int, refuse: ASGIApp) -> None:
        self.app = app
        self.max_body = max_body
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length", "0")
        if not length.isascii() or not length.isdigit() or int(length) > self.max_body:
            return await self._refuse(scope, receive, send, 413, "too_large")
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return await self._refuse(scope, receive, send, 413, "too_large")
        reason = self.forgery(scope, headers, body)
        if reason:
            return await self._refuse(scope, receive, send, 403, reason)

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def forgery(self, scope: Scope, headers: Headers, body: bytes) -> str | None:
        """Why this unsafe request looks forged, or None when it carries this session's token."""
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return "cross-site request"
        origin = headers.get("origin")
        if origin is not None and origin != f"{scope.get('scheme', 'http')}://{headers.get('host', '')}":
            return "foreign origin"
        expected = scope.get("session", {}).get(CSRF_KEY)
        token = headers.get(CSRF_HEADER) or form_token(headers, body)
        if not isinstance(expected, str) or not token or not hmac.compare_digest(token.encode(), expected.encode()):
            return "missing or wrong CSRF token"
        return None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, reason: str) -> None:
        scope.setdefault("state", {})["refusal"] = (status, reason)
        await self.refuse(scope, receive, send)


def form_token(headers: Headers, body: bytes) -> str | None:
    if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    try:
        values = parse_qs(body.decode("ascii"), max_num_fields=200, strict_parsing=False).get(CSRF_FIELD)
    except (UnicodeDecodeError, ValueError):
        return None
    return values[0] if values else None


def refusal(request: Request) -> tuple[int, str]:
    status, reason = request.scope.get("state", {}).get("refusal", (403, "refused"))
    return int(status), str(reason)

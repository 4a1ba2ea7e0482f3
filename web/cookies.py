"""The signed cookie session (itsdangerous), in place of Starlette's SessionMiddleware for two reasons:
the cookie is `Secure` with a `__Host-` name exactly when the request came over HTTPS (directly or through
a trusted proxy), and it is only re-sent when the session changed, which keeps most responses cookie-free.
"""

from __future__ import annotations

import json
from base64 import b64decode, b64encode
from binascii import Error as Base64Error

from itsdangerous import BadSignature, TimestampSigner
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PLAIN_NAME = "chat360_session"
SECURE_NAME = "__Host-chat360_session"


def cookie_name(scope: Scope) -> str:
    return SECURE_NAME if scope.get("scheme") == "https" else PLAIN_NAME


class CookieSession:
    def __init__(self, app: ASGIApp, *, secret_key: str, max_age: int) -> None:
        self.app = app
        self.signer = TimestampSigner(secret_key, salt="chat360.session")
        self.max_age = max_age

    def load(self, raw: str | None) -> dict[str, object]:
        """The session in a cookie value; a forged, expired or malformed cookie is an empty session."""
        if not raw:
            return {}
        try:
            data = json.loads(b64decode(self.signer.unsign(raw, max_age=self.max_age)))
        except (BadSignature, Base64Error, ValueError, UnicodeDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        name = cookie_name(scope)
        raw = HTTPConnection(scope).cookies.get(name)
        initial = self.load(raw)
        scope["session"] = dict(initial)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                session = scope["session"]
                if session != initial or (raw and not initial):
                    MutableHeaders(scope=message).append("Set-Cookie", self.cookie(name, session, scope))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def cookie(self, name: str, session: dict[str, object], scope: Scope) -> str:
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        if not session:
            return f"{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
        value = self.signer.sign(b64encode(json.dumps(session, separators=(",", ":")).encode())).decode()
        return f"{name}={value}; Path=/; Max-Age={self.max_age}; HttpOnly; SameSite=Lax{secure}"


REMEMBER_PLAIN, REMEMBER_SECURE = "chat360_remember", "__Host-chat360_remember"


def remember_name(scope: Scope) -> str:
    """The remembered-browser cookie: a long-lived token of its own, apart from the session cookie."""
    return REMEMBER_SECURE if scope.get("scheme") == "https" else REMEMBER_PLAIN


def set_remembered(response: Response, scope: Scope, *, token: str, days: int) -> None:
    """HttpOnly, Secure over https, SameSite=Lax, for the days the policy allowed."""
    response.set_cookie(
        remember_name(scope),
        token,
        max_age=days * 86400,
        path="/",
        httponly=True,
        secure=scope.get("scheme") == "https",
        samesite="lax",
    )

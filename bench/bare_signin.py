"""The ceiling's sign-in: a minimal real password + TOTP sign-in written directly on the bare stack.

The same four requests as the app's sign-in, doing the work any sign-in must do and nothing the product
adds on top (translations, htmx partials, passkeys, backup codes, notices, the check-up): a CSRF token in
Starlette's signed-cookie session; attempts counted per email, per client address and per account; the
password checked with argon2id at the app's parameters in Starlette's thread pool, as a plain Starlette app
would; a pending session stored as a SHA-256 digest; a TOTP secret decrypted (Fernet) and each code
accepted once per time step; the session continued on a new token; one security-log row. Storage is in
bench/bare_db.py; nothing of the app runs per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import bare_db
import pyotp
from argon2.exceptions import VerifyMismatchError
from jinja2 import DictLoader, Environment
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

FORM = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in</title></head>
<body>
  <h1>Sign in</h1>
  {% if error %}<p role="alert">{{ error }}</p>{% endif %}
  <form action="{{ action }}" method="post">
    <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
    {% if action == "/login" %}
    <label>Email <input type="email" name="email" autocomplete="username" required></label>
    <label>Password <input type="password" name="password" autocomplete="current-password" required></label>
    {% else %}
    <label>Code <input name="code" inputmode="numeric" autocomplete="one-time-code" required></label>
    {% endif %}
    <button>Continue</button>
  </form>
</body>
</html>
"""
TEMPLATES = Environment(loader=DictLoader({"form.html": FORM}), autoescape=True, auto_reload=False)

CSRF, PENDING, TOKEN = "csrf", "signin.pending", "auth.token"
PENDING_TTL = 300  # seconds between the password and the code
FORGET_AFTER = 3600  # a throttle count starts again after an hour without attempts
EMAIL_LIMIT, ADDRESS_LIMIT, ACCOUNT_LIMIT = 10, 100, 10
TOO_MANY, WRONG_PASSWORD, WRONG_CODE = "Too many attempts.", "Wrong email or password.", "Incorrect code."


def form_page(request: Request, action: str, *, error: str = "", status_code: int = 200) -> Response:
    token = request.session.get(CSRF)
    if token is None:
        token = request.session[CSRF] = secrets.token_urlsafe(32)
    html = TEMPLATES.get_template("form.html").render(action=action, csrf_token=token, error=error)
    return HTMLResponse(html, status_code=status_code)


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's (a plain form: the hidden field)."""
    form = await request.form()
    sent, kept = str(form.get("csrf_token", "")), str(request.session.get(CSRF, ""))
    if not kept or not hmac.compare_digest(sent.encode(), kept.encode()):
        raise HTTPException(403)
    return form


def client_address(request: Request) -> str:
    """The member's address: uvicorn puts X-Forwarded-For here when it comes from 127.0.0.1 (a proxy)."""
    return request.client.host if request.client else ""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def take_attempts(conn: Connection, limits: dict[str, int], now: int) -> bool:
    """Count one attempt under each key (one upsert each); False once any key is past its limit."""
    for name, limit in limits.items():
        if conn.execute(bare_db.COUNT, {"name": name, "now": now, "stale": now - FORGET_AFTER}).scalar_one() > limit:
            return False
    return True


def matching_step(secret: str, code: str, at: float) -> int | None:
    """The time step whose code is `code`, within one step of `at`. This is pyotp's
    `verify(code, valid_window=1)`, but it names the step, which is what refuses a replay."""
    totp = pyotp.TOTP(secret)
    current = int(at) // totp.interval
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step).encode(), code.encode()):
            return step
    return None


async def show_login(request: Request) -> Response:
    return form_page(request, "/login")


async def check_password(request: Request) -> Response:
    """The first step: throttle, the password (off the event loop), then a pending session."""
    form, ceiling, now = await checked_form(request), request.app.state.ceiling, int(time.time())
    email, password = str(form.get("email", "")).strip().lower(), str(form.get("password", ""))
    keys = {f"email:{email}": EMAIL_LIMIT, f"address:{client_address(request)}": ADDRESS_LIMIT}
    with ceiling.engine.begin() as conn:
        allowed = take_attempts(conn, keys, now)
        user = conn.execute(bare_db.USER, {"email": email}).first() if allowed else None
    if not allowed:
        return form_page(request, "/login", error=TOO_MANY, status_code=429)
    try:
        await run_in_threadpool(ceiling.hasher.verify, user.password_hash if user else ceiling.absent, password)
    except VerifyMismatchError:
        user = None
    if user is None:
        return form_page(request, "/login", error=WRONG_PASSWORD, status_code=422)
    token = secrets.token_urlsafe(32)
    with ceiling.engine.begin() as conn:
        conn.execute(bare_db.CLEAR, {"name": f"email:{email}"})
        conn.execute(bare_db.OPEN, {"digest": digest(token), "user_id": user.id, "now": now})
    request.session[PENDING] = token
    return RedirectResponse("/login/verify", status_code=303)


async def show_code(request: Request) -> Response:
    since = int(time.time()) - PENDING_TTL
    with request.app.state.ceiling.engine.connect() as conn:
        pending = conn.execute(bare_db.IS_PENDING, {"digest": digest(request.session.get(PENDING, "")), "since": since})
        if pending.first() is None:
            return RedirectResponse("/login", status_code=303)
    return form_page(request, "/login/verify")


async def check_code(request: Request) -> Response:
    """The second step, in one transaction: the pending session and its secret, the account's throttle,
    the code once per time step, then the session verified on a new token and the sign-in logged."""
    form, ceiling, at = await checked_form(request), request.app.state.ceiling, time.time()
    now, old, new = int(at), digest(request.session.get(PENDING, "")), secrets.token_urlsafe(32)
    with ceiling.engine.begin() as conn:  # commits on every return: a failed attempt stays counted
        pending = conn.execute(bare_db.SECOND_STEP, {"digest": old, "since": now - PENDING_TTL}).first()
        if pending is None:
            return RedirectResponse("/login", status_code=303)
        if not take_attempts(conn, {f"account:{pending.user_id}": ACCOUNT_LIMIT}, now):
            return form_page(request, "/login/verify", error=TOO_MANY, status_code=429)
        secret = ceiling.fernet.decrypt(pending.secret_encrypted).decode()
        step = matching_step(secret, str(form.get("code", "")), at)
        used = step is not None and conn.execute(bare_db.USE_STEP, {"step": step, "user_id": pending.user_id}).rowcount
        if not used:
            return form_page(request, "/login/verify", error=WRONG_CODE, status_code=422)
        conn.execute(bare_db.ROTATE, {"new": digest(new), "now": now, "old": old})
        conn.execute(bare_db.CLEAR, {"name": f"account:{pending.user_id}"})
        conn.execute(bare_db.LOG, {"user_id": pending.user_id, "ip": client_address(request), "now": now})
    del request.session[PENDING]
    request.session[TOKEN] = new
    return RedirectResponse("/", status_code=303)


ROUTES = [
    Route("/login", show_login, methods=["GET"]),
    Route("/login", check_password, methods=["POST"]),
    Route("/login/verify", show_code, methods=["GET"]),
    Route("/login/verify", check_code, methods=["POST"]),
]

"""Signing in and out, the second step, "Confirm it's you", and the one-time set-up and password links."""

from __future__ import annotations

import time
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from db import links, login, mfa, users
from db.throttle import Throttled
from web import guards
from web.errors import navigate, replay_fields
from web.forms import SECOND_STEP_EXPIRED, field, throttled_message
from web.offload import hashing
from web.safety import safe_next
from web.templating import render


async def show_login(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    if guards.SID in request.session:
        return RedirectResponse(next_path, status_code=303)
    with guards.db(request) as session:
        empty = not users.has_users(session)
    context = {"next": next_path, "email": "", "error": None, "empty": empty}
    return render(request, "auth/login.html", None, context)


async def sign_in(request: Request) -> Response:
    form = await request.form()
    email, password = field(form, "email", 320), field(form, "password", 1024)
    next_path = safe_next(field(form, "next", 600))
    config = guards.settings(request)
    context = {"next": next_path, "email": email, "empty": False}
    try:
        with guards.db(request) as session:
            step = await hashing(
                request,
                login.password_step,
                session=session,
                email=email,
                password=password,
                hasher=config.password_hasher,
                actor=guards.actor(request),
            )
    except users.InvalidCredentials:
        return render(
            request, "auth/login.html", None, {**context, "error": users.INVALID_CREDENTIALS}, status_code=422
        )
    except Throttled as exc:
        return render(request, "auth/login.html", None, {**context, "error": throttled_message(exc)}, status_code=429)
    if step.token is None:
        guards.begin_session(request, {guards.PENDING_USER: step.user_id, guards.PENDING_AT: int(time.time())})
        return RedirectResponse("/login/verify?next=" + quote(next_path, safe="/"), status_code=303)
    guards.signed_in(request, step.token)
    return RedirectResponse(next_path, status_code=303)


def _pending_user(request: Request) -> int | None:
    user_id, at = request.session.get(guards.PENDING_USER), request.session.get(guards.PENDING_AT, 0)
    if not isinstance(user_id, int) or time.time() - float(at) > guards.settings(request).second_step_ttl:  # type: ignore[arg-type]
        return None
    return user_id


async def show_second_step(request: Request) -> Response:
    if _pending_user(request) is None:
        return RedirectResponse("/login", status_code=303)
    backup = request.query_params.get("method") == "backup"
    context = {"next": safe_next(request.query_params.get("next")), "backup": backup, "error": None}
    return render(request, "auth/challenge.html", None, context)


async def verify_second_step(request: Request) -> Response:
    form = await request.form()
    user_id = _pending_user(request)
    if user_id is None:
        request.session.clear()
        return render(
            request,
            "auth/login.html",
            None,
            {"next": "/", "email": "", "error": SECOND_STEP_EXPIRED, "empty": False},
            status_code=422,
        )
    backup = field(form, "method") == "backup"
    code = field(form, "backup_code" if backup else "code", 64)
    next_path = safe_next(field(form, "next", 600))
    context = {"next": next_path, "backup": backup}
    config = guards.settings(request)
    try:
        with guards.db(request) as session:
            token = await hashing(
                request,
                login.second_step,
                session=session,
                user_id=user_id,
                code=code,
                backup=backup,
                keyring=config.keyring,
                actor=guards.actor(request),
                at=config.totp_clock(),
            )
    except mfa.IncorrectCode:
        error = mfa.INCORRECT_BACKUP_CODE if backup else mfa.INCORRECT_CODE
        return render(request, "auth/challenge.html", None, {**context, "error": error}, status_code=422)
    except Throttled as exc:
        return render(
            request, "auth/challenge.html", None, {**context, "error": throttled_message(exc)}, status_code=429
        )
    guards.signed_in(request, token)
    return RedirectResponse(next_path, status_code=303)


async def sign_out(request: Request) -> Response:
    token = request.session.get(guards.SID)
    if isinstance(token, str):
        try:
            found = guards.member(request, enrolling=True)
        except guards.NotSignedIn:
            found = None
        with guards.db(request) as session:
            login.end_session(session, token=token, actor=guards.actor(request, found))
    request.session.clear()
    response = navigate(request, "/login")
    response.headers["Clear-Site-Data"] = '"cache"'
    return response


async def show_reauth(request: Request) -> Response:
    member = guards.member(request)
    context = {"next": safe_next(request.query_params.get("next"), "/settings"), "method": "GET", "replay": []}
    context |= {"reauth_member": member, "error": None, "backup": request.query_params.get("method") == "backup"}
    return render(request, "auth/reauth.html", "auth/_reauth_dialog.html", context)


async def reauthenticate(request: Request) -> Response:
    """Check the member again, then resume: 307 replays the original POST (its fields rode along hidden).

    A member held at enrolment may confirm too: enabling MFA itself needs a fresh check.
    """
    member = guards.member(request, enrolling=True)
    form = await request.form()
    method = field(form, "reauth_method")
    next_path = safe_next(field(form, "reauth_next", 600), "/settings")
    factor = field(form, "reauth_factor")
    secret = field(form, "reauth_secret", 1024)
    config = guards.settings(request)
    replay = replay_fields(form)
    context = {
        "next": next_path,
        "method": method,
        "replay": replay,
        "reauth_member": member,
        "backup": factor == "backup",
    }
    switch = field(form, "reauth_switch")
    if switch:  # the member chose the other factor: show it, keeping what they were doing; nothing is checked
        return _reauth_again(request, context | {"backup": switch == "backup", "error": None}, 200)
    try:
        with guards.db(request) as session:
            token = await hashing(
                request,
                login.reauthenticate,
                session=session,
                member=member,
                secret=secret,
                method=factor,
                keyring=config.keyring,
                hasher=config.password_hasher,
                actor=guards.actor(request, member),
                at=config.totp_clock(),
            )
    except (mfa.IncorrectCode, login.IncorrectPassword):
        error = login.INCORRECT_PASSWORD if not member.mfa_enabled else mfa.INCORRECT_CODE
        return _reauth_again(request, context | {"error": error}, 422)
    except Throttled as exc:
        return _reauth_again(request, context | {"error": throttled_message(exc)}, 429)
    request.session[guards.SID] = token
    if method == "POST":
        return RedirectResponse(next_path, status_code=307)
    return navigate(request, next_path)


def _reauth_again(request: Request, context: dict[str, object], status: int) -> Response:
    headers = {"HX-Retarget": "#modal", "HX-Reswap": "innerHTML"}
    return render(request, "auth/reauth.html", "auth/_reauth_dialog.html", context, status_code=status, headers=headers)


async def show_setup(request: Request) -> Response:
    token = request.path_params["token"]
    with guards.db(request) as session:
        valid = links.setup_token_valid(session, token=token)
    if not valid:
        return render(request, "auth/link_invalid.html", None, {}, status_code=404)
    return render(request, "auth/setup.html", None, {"token": token, "email": "", "errors": {}})


async def claim_instance(request: Request) -> Response:
    token = request.path_params["token"]
    form = await request.form()
    email, password = field(form, "email", 320), field(form, "password", 1024)
    config = guards.settings(request)
    try:
        with guards.db(request) as session:
            await hashing(
                request,
                links.claim_instance,
                session=session,
                token=token,
                email=email,
                password=password,
                hasher=config.password_hasher,
                actor=guards.actor(request),
            )
    except users.InvalidInput as exc:
        context = {"token": token, "email": email, "errors": {exc.field: exc.message}}
        return render(request, "auth/setup.html", None, context, status_code=422)
    except links.InvalidLink:
        return render(request, "auth/link_invalid.html", None, {}, status_code=404)
    return RedirectResponse("/login?next=/settings", status_code=303)


async def show_set_password(request: Request) -> Response:
    return render(request, "auth/set_password.html", None, {"token": request.path_params["token"], "errors": {}})


async def set_password(request: Request) -> Response:
    token = request.path_params["token"]
    form = await request.form()
    config = guards.settings(request)
    try:
        with guards.db(request) as session:
            await hashing(
                request,
                links.set_password_with_link,
                session=session,
                token=token,
                password=field(form, "password", 1024),
                hasher=config.password_hasher,
                actor=guards.actor(request),
            )
    except users.InvalidInput as exc:
        context = {"token": token, "errors": {exc.field: exc.message}}
        return render(request, "auth/set_password.html", None, context, status_code=422)
    except links.InvalidLink:
        return render(request, "auth/link_invalid.html", None, {}, status_code=404)
    return RedirectResponse("/login", status_code=303)

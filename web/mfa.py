"""Settings › Multi-Factor Authentication › Time-Based OTP: enable (QR code, setup key, confirm), backup
codes, regenerate, disable. Each answer is the TOTP panel, alone for htmx or inside the Settings page."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from db import mfa, totp
from db.throttle import Throttled
from web import guards
from web.forms import field, throttled_message
from web.offload import hashing
from web.templating import render

PAGE, PANEL = "account/settings.html", "account/_mfa_section.html"
SECRETS_SHOWN = {"Cache-Control": "no-store"}


def _pending(request: Request, member: guards.Member) -> str | None:
    """The pending secret in this session, if any and still valid; an expired one is dropped."""
    sealed = request.session.get(guards.ENROLMENT)
    if not isinstance(sealed, str) or member.mfa_enabled:
        return None
    config = guards.settings(request)
    try:
        return mfa.open_enrolment(config.keyring, sealed, user_id=member.user.id or 0, ttl=config.enrolment_ttl)
    except mfa.EnrolmentExpired:
        request.session.pop(guards.ENROLMENT, None)
        return None


def _panel(request: Request, member: guards.Member, *, status_code: int = 200, **extra: Any) -> Response:
    secret = extra.pop("secret", None) or _pending(request, member)
    config = guards.settings(request)
    uri = totp.provisioning_uri(secret, account=member.user.email, issuer=config.app_name) if secret else None
    context = {"expanded": True, "panel": "totp", "secret": secret, "uri": uri, "error": None, "disabling": False}
    context |= extra
    headers = SECRETS_SHOWN if secret or extra.get("codes") else None
    return render(request, PAGE, PANEL, context, status_code=status_code, headers=headers)


async def show_totp(request: Request) -> Response:
    member = guards.member(request, enrolling=True)
    query = request.query_params
    return _panel(
        request,
        member,
        disabling=query.get("action") == "disable" and member.mfa_enabled,
        backup=query.get("method") == "backup",
        just_disabled=query.get("status") == "disabled" and not member.mfa_enabled,
    )


async def start_totp(request: Request) -> Response:
    """Enable switched on: a new secret, sealed in the session only, shown as QR code and setup key."""
    member = guards.member(request, enrolling=True)
    guards.require_recent_auth(request, member)
    if member.mfa_enabled:
        return _panel(request, member)
    sealed, secret = mfa.begin_enrolment(guards.settings(request).keyring, user_id=member.user.id or 0)
    request.session[guards.ENROLMENT] = sealed
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse("/settings/mfa/totp", status_code=303)
    return _panel(request, member, secret=secret)


async def cancel_totp(request: Request) -> Response:
    member = guards.member(request, enrolling=True)
    request.session.pop(guards.ENROLMENT, None)
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse("/settings/mfa/totp", status_code=303)
    return _panel(request, member)


async def confirm_totp(request: Request) -> Response:
    member = guards.member(request, enrolling=True)
    guards.require_recent_auth(request, member)
    form = await request.form()
    sealed = request.session.get(guards.ENROLMENT)
    if not isinstance(sealed, str):
        return _panel(request, member, error=mfa.ENROLMENT_EXPIRED, status_code=422)
    config = guards.settings(request)
    try:
        with guards.db(request) as session:
            changed = await hashing(
                request,
                mfa.confirm_totp,
                session=session,
                user=member.user,
                sealed=sealed,
                code=field(form, "code", 64),
                keyring=config.keyring,
                ttl=config.enrolment_ttl,
                actor=guards.actor(request, member),
                at=config.totp_clock(),
            )
    except mfa.EnrolmentExpired:
        request.session.pop(guards.ENROLMENT, None)
        return _panel(request, member, error=mfa.ENROLMENT_EXPIRED, status_code=422)
    except mfa.AlreadyEnabled:
        request.session.pop(guards.ENROLMENT, None)
        return _panel(request, member, error=mfa.ALREADY_ENABLED, status_code=422)
    except mfa.IncorrectCode:
        return _panel(request, member, error=mfa.INCORRECT_CODE, status_code=422)
    except Throttled as exc:
        return _panel(request, member, error=throttled_message(exc), status_code=429)
    request.session.pop(guards.ENROLMENT, None)
    request.session[guards.SID] = changed.token
    return _codes(request, changed.codes, enabled=True)


def _codes(request: Request, codes: list[str], *, enabled: bool) -> Response:
    """The backup codes, shown this once; the member behind them was just reloaded (MFA is now on)."""
    request.state.member = None
    member = guards.member(request)
    return _panel(request, member, codes=codes, just_enabled=enabled)


async def disable_totp(request: Request) -> Response:
    member = guards.member(request)
    form = await request.form()
    backup = field(form, "method") == "backup"
    config = guards.settings(request)
    try:
        with guards.db(request) as session:
            changed = await hashing(
                request,
                mfa.disable_totp,
                session=session,
                user=member.user,
                code=field(form, "backup_code" if backup else "code", 64),
                backup=backup,
                keyring=config.keyring,
                required=member.mfa_required,
                actor=guards.actor(request, member),
                at=config.totp_clock(),
            )
    except mfa.MfaRequired:
        return _panel(request, member, disabling=True, backup=backup, error=mfa.MFA_REQUIRED, status_code=422)
    except mfa.IncorrectCode:
        error = mfa.INCORRECT_BACKUP_CODE if backup else mfa.INCORRECT_CODE
        return _panel(request, member, disabling=True, backup=backup, error=error, status_code=422)
    except Throttled as exc:
        return _panel(request, member, disabling=True, backup=backup, error=throttled_message(exc), status_code=429)
    request.session[guards.SID] = changed.token
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse("/settings/mfa/totp?status=disabled", status_code=303)
    request.state.member = None
    return _panel(request, guards.member(request), just_disabled=True)


async def regenerate_recovery_codes(request: Request) -> Response:
    member = guards.member(request)
    guards.require_recent_auth(request, member)
    with guards.db(request) as session:
        try:
            changed = await hashing(
                request,
                mfa.regenerate_recovery_codes,
                session=session,
                user=member.user,
                actor=guards.actor(request, member),
            )
        except mfa.IncorrectCode:
            return _panel(request, member, error="Turn on multi-factor authentication first.", status_code=422)
    request.session[guards.SID] = changed.token
    return _codes(request, changed.codes, enabled=False)

"""Settings › Multi-Factor Authentication › Time-Based OTP: enable (QR code, setup key, confirm), disable,
and backup codes. Each answer is the MFA section, alone for htmx or inside the Settings page."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from db import mfa
from db.errors import DomainError
from db.factors import totp
from web import guards
from web.guards import Context, guarded
from web.templating import render, url_path

PAGE, SECTION = "account/settings.html", "account/_mfa_section.html"
SECRETS_SHOWN = {"Cache-Control": "no-store"}


def pending_secret(ctx: Context) -> str | None:
    """The secret being enrolled in this session, if any and still valid; an expired one is dropped."""
    sealed = ctx.session.get(guards.ENROLMENT)
    if not isinstance(sealed, str) or ctx.member.has_totp:
        return None
    try:
        keyring = ctx.request.app.state.keyring
        return totp.open_enrolment(keyring, sealed, user_id=ctx.member.user.id, ttl=ctx.settings.enrolment_ttl)
    except totp.EnrolmentExpired:
        ctx.session.pop(guards.ENROLMENT, None)
        return None


def panel_state(ctx: Context, *, disabling: bool, secret: str | None) -> str:
    """Which of the TOTP panel's partials shows: off, enrolling, on, or the Disable form."""
    if ctx.member.has_totp:
        return "disabling" if disabling else "on"
    return "enrolling" if secret else "off"


def panel(
    ctx: Context, *, status_code: int = 200, disabling: bool = False, redirect: str | None = None, **extra: Any
) -> Response:
    secret = extra.pop("secret", None) or pending_secret(ctx)
    uri = totp.provisioning_uri(secret, account=ctx.member.user.email, issuer=ctx.settings.app_name) if secret else None
    context = {"expanded": True, "panel": "totp", "secret": secret, "uri": uri, "error": None, "codes": None}
    context |= {"totp_state": panel_state(ctx, disabling=disabling, secret=secret)} | extra
    headers = SECRETS_SHOWN if secret or context["codes"] else None
    return render(ctx.request, PAGE, SECTION, context, status_code=status_code, headers=headers, redirect=redirect)


def refused(ctx: Context, error: DomainError, **extra: Any) -> Response:
    return panel(ctx, error=error.message, status_code=error.status, **extra)


@guarded(enrolling=True)
async def show_totp(ctx: Context) -> Response:
    query = ctx.request.query_params
    disabling = query.get("action") == "disable"
    just_disabled = query.get("status") == "disabled" and not ctx.member.has_totp
    return panel(ctx, disabling=disabling, backup=query.get("method") == "backup", just_disabled=just_disabled)


@guarded(enrolling=True, step_up=True)
async def start_totp(ctx: Context) -> Response:
    """Enable switched on: a new secret, sealed in the session only, shown as QR code and setup key."""
    if ctx.member.has_totp:
        return panel(ctx)
    sealed, secret = totp.begin_enrolment(ctx.request.app.state.keyring, user_id=ctx.member.user.id)
    ctx.session[guards.ENROLMENT] = sealed
    return panel(ctx, secret=secret, redirect=url_path(ctx.request, "show_totp"))


@guarded(enrolling=True)
async def cancel_totp(ctx: Context) -> Response:
    ctx.session.pop(guards.ENROLMENT, None)
    return panel(ctx, redirect=url_path(ctx.request, "show_totp"))


@guarded(enrolling=True, step_up=True)
async def confirm_totp(ctx: Context) -> Response:
    sealed = ctx.session.get(guards.ENROLMENT)
    try:
        if not isinstance(sealed, str):
            raise totp.EnrolmentExpired()
        ttl = ctx.settings.enrolment_ttl
        changed = await ctx.run(
            mfa.confirm_totp, user=ctx.member.user, sealed=sealed, code=ctx.field("code", 64), ttl=ttl
        )
    except (totp.EnrolmentExpired, totp.AlreadyEnabled) as error:
        ctx.session.pop(guards.ENROLMENT, None)
        return refused(ctx, error)
    except DomainError as error:
        return refused(ctx, error)
    ctx.session.pop(guards.ENROLMENT, None)
    ctx.rotate(changed.session_token)
    return panel(ctx, codes=changed.codes, just_enabled=True)


@guarded()
async def disable_totp(ctx: Context) -> Response:
    method = "backup" if ctx.field("method") == "backup" else "totp"
    code = ctx.field("backup_code" if method == "backup" else "code", 64)
    try:
        required = ctx.member.mfa_required
        changed = await ctx.run(mfa.disable, user=ctx.member.user, method=method, code=code, required=required)
    except DomainError as error:
        return refused(ctx, error, disabling=True, backup=method == "backup")
    ctx.rotate(changed.session_token)
    return panel(ctx, just_disabled=True, redirect=url_path(ctx.request, "show_totp") + "?status=disabled")


@guarded(step_up=True)
async def regenerate_recovery_codes(ctx: Context) -> Response:
    enabled = ctx.member.mfa_enabled
    try:
        changed = await ctx.run(mfa.regenerate_recovery_codes, user=ctx.member.user, enabled=enabled)
    except DomainError as error:
        return refused(ctx, error)
    ctx.rotate(changed.session_token)
    return panel(ctx, codes=changed.codes, just_enabled=False)

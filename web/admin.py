"""Team (members, MFA policy, reset, unlock, remove) for admins. Every change here asks "Confirm it's
you" by rule: `@guarded(admin=True)` on a POST route requires a fresh second-factor check."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from db import mfa, org, roster
from db.errors import DomainError
from db.i18n import _
from db.models import ROLES
from web import urls
from web.guards import Context, guarded
from web.templating import render, url_path

FLASH = "team.status"


async def team(ctx: Context, *, status_code: int = 200, **extra: Any) -> Response:
    members, policy = await ctx.run(roster.team)
    context = {"members": members, "policy": policy, "roles": ROLES, "errors": {}, "status": None, "link": None}
    return render(ctx.request, "admin/team.html", "admin/_team.html", context | extra, status_code=status_code)


async def done(ctx: Context, status: str, **extra: Any) -> Response:
    """The Team section again with what was done: swapped in for htmx, or after a redirect (the message
    waits in the session for the next page)."""
    if ctx.request.headers.get("HX-Request") != "true" and not extra:
        ctx.session[FLASH] = status
        return render(ctx.request, "admin/team.html", redirect=url_path(ctx.request, "show_team"))
    return await team(ctx, status=status, **extra)


async def refused(ctx: Context, error: DomainError, **extra: Any) -> Response:
    return await team(ctx, errors={error.field or "role": error.message}, status_code=error.status, **extra)


@guarded(admin=True)
async def show_team(ctx: Context) -> Response:
    return await team(ctx, status=ctx.session.pop(FLASH, None))


@guarded(admin=True)
async def add_member(ctx: Context) -> Response:
    email, role = ctx.field("email", 320), ctx.field("role", 16)
    try:
        user, token = await ctx.run(org.add_member, email=email, role=role)
    except DomainError as error:
        return await refused(ctx, error, new_email=email)
    link = urls.absolute(ctx.request, "show_set_password", token=token)
    return await done(
        ctx, _("Added %(email)s. Send them this one-time link to choose a password:", email=user.email), link=link
    )


@guarded(admin=True)
async def change_role(ctx: Context) -> Response:
    try:
        user = await ctx.run(org.change_role, user_id=ctx.request.path_params["id"], role=ctx.field("role", 16))
    except DomainError as error:
        return await refused(ctx, error)
    return await done(ctx, _("Changed the role of %(email)s.", email=user.email))


@guarded(admin=True)
async def reset_mfa(ctx: Context) -> Response:
    reason = ctx.field("reason", 200).strip() or "lost device"
    try:
        user = await ctx.run(org.get_member, user_id=ctx.request.path_params["id"])
        await ctx.run(mfa.reset_mfa, user=user, reason=reason)
    except DomainError as error:
        return await refused(ctx, error)
    return await done(
        ctx, _("Reset multi-factor authentication for %(email)s; their sessions have ended.", email=user.email)
    )


@guarded(admin=True)
async def unlock_member(ctx: Context) -> Response:
    try:
        user = await ctx.run(org.lift_lock, user_id=ctx.request.path_params["id"])
    except DomainError as error:
        return await refused(ctx, error)
    return await done(ctx, _("Unlocked %(email)s.", email=user.email))


@guarded(admin=True)
async def remove_member(ctx: Context) -> Response:
    try:
        user = await ctx.run(org.remove_member, user_id=ctx.request.path_params["id"])
    except DomainError as error:
        return await refused(ctx, error)
    return await done(ctx, _("Removed %(email)s; their sessions have ended.", email=user.email))


@guarded(admin=True)
async def save_policy(ctx: Context) -> Response:
    flags = ("require_admins", "require_agents", "remember_admins", "remember_agents")
    wants = {name: ctx.field(name) == "1" for name in flags}
    days: dict[str, Any] = {"grace_days": ctx.field("grace_days", 8), "remember_days": ctx.field("remember_days", 8)}
    try:
        await ctx.run(org.save_policy, **days, **wants)
    except DomainError as error:
        return await refused(ctx, error)
    return await done(ctx, _("Saved the security policy."))

"""Settings › Webhooks and Settings › Billing: admins only, each view and change behind step-up."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from db import sensitive
from db.errors import DomainError
from web.guards import Context, guarded
from web.templating import render, url_path


async def webhooks(ctx: Context, *, status_code: int = 200, redirect: str | None = None, **extra: Any) -> Response:
    hooks = await ctx.run(sensitive.list_webhooks)
    context = {"hooks": hooks, "url": "", "error": None, "secret": None} | extra
    page, partial = "settings/webhooks.html", "settings/_webhooks.html"
    headers = {"Cache-Control": "no-store"}
    return render(ctx.request, page, partial, context, status_code=status_code, headers=headers, redirect=redirect)


@guarded(admin=True, step_up=True)
async def show_webhooks(ctx: Context) -> Response:
    return await webhooks(ctx)


@guarded(admin=True, step_up=True)
async def add_webhook(ctx: Context) -> Response:
    url = ctx.field("url", 600)
    try:
        hook, secret = await ctx.run(sensitive.add_webhook, url=url, resolver=ctx.settings.resolver)
    except DomainError as error:
        return await webhooks(ctx, url=url, error=error.message, status_code=error.status)
    return await webhooks(ctx, secret=secret, added=hook.url)


@guarded(admin=True, step_up=True)
async def toggle_webhook(ctx: Context) -> Response:
    enabled = ctx.field("enabled") == "1"
    await ctx.run(sensitive.set_webhook_enabled, webhook_id=ctx.request.path_params["id"], enabled=enabled)
    return await webhooks(ctx, redirect=url_path(ctx.request, "show_webhooks"))


@guarded(admin=True, step_up=True)
async def delete_webhook(ctx: Context) -> Response:
    url = await ctx.run(sensitive.delete_webhook, webhook_id=ctx.request.path_params["id"])
    return await webhooks(ctx, deleted=url, redirect=url_path(ctx.request, "show_webhooks"))


async def billing(ctx: Context, *, status_code: int = 200, redirect: str | None = None, **extra: Any) -> Response:
    current = await ctx.run(sensitive.get_billing)
    context = {"billing": current, "plans": sensitive.PLANS, "errors": {}, "saved": False} | extra
    page, partial = "settings/billing.html", "settings/_billing.html"
    return render(ctx.request, page, partial, context, status_code=status_code, redirect=redirect)


@guarded(admin=True, step_up=True)
async def show_billing(ctx: Context) -> Response:
    return await billing(ctx, saved=ctx.request.query_params.get("saved") == "1")


@guarded(admin=True, step_up=True)
async def save_billing(ctx: Context) -> Response:
    typed: dict[str, Any] = {"plan": ctx.field("plan", 32), "billing_email": ctx.field("billing_email", 320)}
    try:
        await ctx.run(sensitive.save_billing, **typed)
    except DomainError as error:
        return await billing(ctx, errors={error.field: error.message}, typed=typed, status_code=error.status)
    return await billing(ctx, saved=True, redirect=url_path(ctx.request, "show_billing") + "?saved=1")

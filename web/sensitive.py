"""Settings › Webhooks and Settings › Billing: admins only, each view and change behind step-up."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from db import sensitive
from db.users import InvalidInput
from web import guards
from web.forms import field
from web.templating import render


def _admin_fresh(request: Request) -> guards.Member:
    member = guards.admin(request)
    guards.require_recent_auth(request, member)
    return member


def _webhooks(request: Request, *, status_code: int = 200, **extra: object) -> Response:
    with guards.db(request) as session:
        hooks = sensitive.list_webhooks(session)
    context = {"hooks": hooks, "url": "", "error": None, "secret": None} | extra
    headers = {"Cache-Control": "no-store"}
    return render(
        request, "settings/webhooks.html", "settings/_webhooks.html", context, status_code=status_code, headers=headers
    )


async def show_webhooks(request: Request) -> Response:
    _admin_fresh(request)
    return _webhooks(request)


async def add_webhook(request: Request) -> Response:
    member = _admin_fresh(request)
    form = await request.form()
    url = field(form, "url", 600)
    config = guards.settings(request)
    try:
        with guards.db(request) as session:
            hook, secret = await run_in_threadpool(  # the name is resolved: never block the event loop on DNS
                sensitive.add_webhook,
                session,
                url=url,
                keyring=config.keyring,
                actor=guards.actor(request, member),
                resolver=config.resolver,
            )
    except InvalidInput as exc:
        return _webhooks(request, url=url, error=exc.message, status_code=422)
    return _webhooks(request, secret=secret, added=hook.url)


async def _change(request: Request, *, delete: bool) -> Response:
    member = _admin_fresh(request)
    form = await request.form()
    try:
        with guards.db(request) as session:
            if delete:
                sensitive.delete_webhook(
                    session, webhook_id=request.path_params["id"], actor=guards.actor(request, member)
                )
            else:
                enabled = field(form, "enabled") == "1"
                sensitive.set_webhook_enabled(
                    session, webhook_id=request.path_params["id"], enabled=enabled, actor=guards.actor(request, member)
                )
    except LookupError as exc:
        raise HTTPException(404) from exc
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse("/settings/webhooks", status_code=303)
    return _webhooks(request)


async def toggle_webhook(request: Request) -> Response:
    return await _change(request, delete=False)


async def delete_webhook(request: Request) -> Response:
    return await _change(request, delete=True)


def _billing(request: Request, *, status_code: int = 200, **extra: object) -> Response:
    with guards.db(request) as session:
        billing = sensitive.get_billing(session)
    context = {"billing": billing, "plans": sensitive.PLANS, "errors": {}, "saved": False} | extra
    return render(request, "settings/billing.html", "settings/_billing.html", context, status_code=status_code)


async def show_billing(request: Request) -> Response:
    _admin_fresh(request)
    return _billing(request, saved=request.query_params.get("saved") == "1")


async def save_billing(request: Request) -> Response:
    member = _admin_fresh(request)
    form = await request.form()
    try:
        with guards.db(request) as session:
            sensitive.save_billing(
                session,
                plan=field(form, "plan", 32),
                billing_email=field(form, "billing_email", 320),
                actor=guards.actor(request, member),
            )
    except InvalidInput as exc:
        typed = {"plan": field(form, "plan", 32), "billing_email": field(form, "billing_email", 320)}
        return _billing(request, errors={exc.field: exc.message}, typed=typed, status_code=422)
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse("/settings/billing?saved=1", status_code=303)
    return _billing(request, saved=True)

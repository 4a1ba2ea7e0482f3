"""The one-time links: the set-up link that creates the first admin, set-password links for new members."""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response

from db import links
from db.errors import DomainError
from web.guards import Context, guarded
from web.templating import render, url_path

INVALID = "auth/link_invalid.html"


@guarded(signed_in=False)
async def show_setup(ctx: Context) -> Response:
    token = ctx.request.path_params["token"]
    if not await ctx.run(links.setup_token_valid, token=token):
        return render(ctx.request, INVALID, status_code=404)
    return render(ctx.request, "auth/setup.html", None, {"token": token, "email": "", "errors": {}})


@guarded(signed_in=False)
async def claim_instance(ctx: Context) -> Response:
    token, email = ctx.request.path_params["token"], ctx.field("email", 320)
    try:
        await ctx.run(links.claim_instance, token=token, email=email, password=ctx.field("password", 1024))
    except DomainError as error:
        context = {"token": token, "email": email, "errors": {error.field: error.message}}
        return render(
            ctx.request, "auth/setup.html" if error.field else INVALID, None, context, status_code=error.status
        )
    return RedirectResponse(url_path(ctx.request, "show_login") + "?next=/settings", status_code=303)


@guarded(signed_in=False)
async def show_set_password(ctx: Context) -> Response:
    return render(
        ctx.request, "auth/set_password.html", None, {"token": ctx.request.path_params["token"], "errors": {}}
    )


@guarded(signed_in=False)
async def set_password(ctx: Context) -> Response:
    token = ctx.request.path_params["token"]
    try:
        await ctx.run(links.set_password_with_link, token=token, password=ctx.field("password", 1024))
    except DomainError as error:
        context = {"token": token, "errors": {error.field: error.message}}
        page = "auth/set_password.html" if error.field else INVALID
        return render(ctx.request, page, None, context, status_code=error.status)
    return RedirectResponse(url_path(ctx.request, "show_login"), status_code=303)

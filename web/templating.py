"""Jinja templates, and the one helper that answers a full page or its htmx partial from the same blocks."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

import segno
from jinja2 import FileSystemLoader, pass_context
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from db import i18n, useragents
from db.factors import recovery_codes
from web import i18n as web_i18n
from web.folding import LocaleEnvironment
from web.protect import CSRF_FIELD, csrf_token

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"
HTMX = "htmx-4.0.1.min.js"


def wants_partial(request: Request) -> bool:
    """htmx 4 says "partial" or "full" in HX-Request-Type; htmx 2 only says HX-Request (and HX-Boosted)."""
    kind = request.headers.get("HX-Request-Type")
    if kind is not None:
        return kind == "partial"
    return request.headers.get("HX-Request") == "true" and "HX-Boosted" not in request.headers


def qr_svg(uri: str) -> Markup:
    """The URI as an inline SVG QR code: no URL carries the secret and nothing is cached apart from the page."""
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=4, dark="#000", light="#fff", omitsize=True)
    return Markup(svg)  # segno builds the markup itself; the URI is only encoded into modules


class CsrfInput:
    """The hidden CSRF field of every form, as a context value rather than a macro: a macro call per form
    (and the `import … with context` it needed in each partial) was a tenth of a Settings page's render.
    The token is read (or made) only when a form prints it, so a page without forms sets no cookie."""

    __slots__ = ("session",)

    def __init__(self, session: dict[str, Any]) -> None:
        self.session = session

    def __html__(self) -> str:
        return f'<input type="hidden" name="{CSRF_FIELD}" value="{csrf_token(self.session)}">'


@cache
def static_version(name: str) -> str:
    """A content hash for cache busting, so static files can be cached for a year."""
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def static_url(request: Request, name: str) -> str:
    return _static_path(request.app, name)


@cache
def _static_path(app: Starlette, name: str) -> str:
    return f"{app.url_path_for('static', path=name)}?v={static_version(name)}"


@pass_context
def url_for(context: dict[str, Any], name: str, /, **path_params: Any) -> str:
    """The path of a route, relative to the site. Paths without parameters are looked up once per app:
    Starlette's lookup tries every route in turn, which was a third of a Settings page's time."""
    app = context["request"].app
    if path_params:
        return str(app.url_path_for(name, **path_params))
    return _route_path(app, name)


def url_path(request: Request, name: str, /, **path_params: Any) -> str:
    """A route's path for the code in web/: no literal paths, and no Host header in a redirect."""
    if path_params:
        return str(request.app.url_path_for(name, **path_params))
    return _route_path(request.app, name)


@cache
def _route_path(app: Starlette, name: str) -> str:
    return str(app.url_path_for(name))


def make_templates(app_name: str, *, debug: bool = False, **extra: Any) -> dict[str, Jinja2Templates]:
    """One set of templates per language (web/folding.py translates their literal messages when compiling)."""
    return {locale: _templates(locale, app_name, debug, extra) for locale in i18n.LOCALES}


def _templates(locale: str, app_name: str, debug: bool, extra: dict[str, Any]) -> Jinja2Templates:
    env = LocaleEnvironment(
        locale,
        loader=FileSystemLoader(ROOT / "templates"),
        autoescape=True,
        auto_reload=debug,  # no stat() of every template on every render in production
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["url_for"] = url_for
    env.filters["qr_svg"] = qr_svg
    env.filters["device_name"] = useragents.describe
    env.filters["combine_attrs"] = lambda a, b: {**a, **b}
    env.globals["app_name"] = app_name
    env.globals["codes_total"] = recovery_codes.COUNT
    env.globals["htmx"] = HTMX
    env.globals["static_url"] = static_url
    env.globals["csrf_token"] = lambda request: csrf_token(request.session)
    env.globals.update(extra)
    web_i18n.install(env)
    return Jinja2Templates(env=env)


def render(
    request: Request,
    page: str,
    partial: str | None = None,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    redirect: str | None = None,
) -> Response:
    """The one answer helper: the partial for an htmx request that swaps part of a page; for a plain form
    post that succeeded, a 303 to `redirect` (post/redirect/get); the whole page otherwise.

    A partial names its own target in its markup (`hx-target` on the element that asked). Only a request
    resumed from the "Confirm it's you" dialog, which htmx sent from inside the dialog, is told where its
    partial belongs (`HX-Retarget`), so it lands back in the page and not in the dialog.
    """
    headers = dict(headers or {})
    if partial and wants_partial(request):
        name = partial
        if getattr(request.state, "resumed", False):
            headers.setdefault("HX-Retarget", "#" + partial_id(partial))
            headers.setdefault("HX-Reswap", "outerHTML")
    elif redirect is not None and request.method == "POST" and status_code < 400:
        return RedirectResponse(redirect, status_code=303)
    else:
        name = page
    locale = web_i18n.locale_of(request)
    templates: Jinja2Templates = request.app.state.templates[locale]
    context = {"member": getattr(request.state, "member", None), **(context or {})}
    context |= {"lang": locale, "dir": "rtl" if locale in i18n.RTL else "ltr", "csrf_input": CsrfInput(request.session)}
    active, zone = i18n.ACTIVE.set(locale), i18n.ZONE.set(web_i18n.time_zone_of(request))
    try:  # the template renders here, so messages from db/ (i18n.Text) print in the page's language
        response = templates.TemplateResponse(request, name, context, status_code=status_code, headers=headers)
    finally:
        i18n.ACTIVE.reset(active)
        i18n.ZONE.reset(zone)
    response.headers["Content-Language"] = locale
    response.headers["Vary"] = "HX-Request, HX-Request-Type, Accept-Language"
    return response


def navigate(request: Request, url: str, *, status: int = 303) -> Response:
    """Go to `url`: a redirect for a browser, HX-Redirect for htmx (which never follows a 3xx into a swap)."""
    if request.headers.get("HX-Request") == "true":
        code = status if status >= 400 else 200
        return Response(status_code=code, headers={"HX-Redirect": url, "Vary": "HX-Request, HX-Request-Type"})
    return RedirectResponse(url, status_code=303)


def partial_id(name: str) -> str:
    """`mfa/_totp_panel.html` → `totp-panel`: a partial's root element has the id of its file name."""
    return Path(name).stem.lstrip("_").replace("_", "-")

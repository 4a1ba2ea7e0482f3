"""Which language a page speaks: the member's choice in Settings, else the browser's Accept-Language among
the shipped languages, else English. And the gettext callables the templates use (newstyle: values are
escaped and formatted after the lookup)."""

from __future__ import annotations

import functools
from typing import Any

from babel.core import negotiate_locale
from babel.dates import format_skeleton
from jinja2 import Environment
from markupsafe import Markup
from starlette.requests import Request

from db import i18n, preferences

ROLES = {"admin": i18n._("Admin"), "agent": i18n._("Agent")}  # i18n.Text: printed in the page's language


def accepted(header: str) -> list[str]:
    """The languages of an Accept-Language header, most wanted first (q=0 means "not this one")."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            ranked.append((-q, index, tag.strip()))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(header: str) -> str:
    preferred = accepted(header)
    # "de-AT" matches "de": babel tries the language alone after the full tag when the tag is not shipped.
    found = negotiate_locale(preferred + [t.split("-")[0] for t in preferred], i18n.LOCALES, sep="-")
    return found or "en"


def locale_of(request: Request) -> str:
    member = getattr(request.state, "member", None)
    chosen = i18n.known(member.user.locale) if member is not None else None
    return chosen or negotiate(request.headers.get("accept-language", ""))


def time_zone_of(request: Request) -> str | None:
    member = getattr(request.state, "member", None)
    return member.user.time_zone if member is not None else None


def _gettext(message: str) -> str:
    return i18n.translations(i18n.ACTIVE.get()).gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return i18n.translations(i18n.ACTIVE.get()).ngettext(singular, plural, n)


def page_gettext(message: str, /, **variables: Any) -> Markup:
    """`_()` in a template: what jinja2.ext.i18n's newstyle gettext does (the translation is markup, the
    values are escaped into it, and it is always a format string), in one call instead of the extension's
    three context-resolving calls per string; a Settings page says about fifty."""
    return Markup(_gettext(message)) % variables


def page_ngettext(singular: str, plural: str, num: int, /, **variables: Any) -> Markup:
    return Markup(_ngettext(singular, plural, num)) % ({"num": num} | variables)


def install(env: Environment) -> None:
    """The i18n extension (so `pybabel extract` and `{% trans %}` work as documented), with the page
    callables above in place of its wrappers. Every template is HTML, so autoescape is always on."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(_=page_gettext, gettext=page_gettext, ngettext=page_ngettext)
    env.filters["when"] = _when
    env.filters["day"] = lambda value: format_skeleton("MMMd", value, locale=i18n.ACTIVE.get())
    env.globals["LANGUAGES"] = i18n.NAMES
    env.globals["ROLES"] = ROLES
    env.globals["time_zone_options"] = time_zone_options


@functools.lru_cache(maxsize=64)
def time_zone_options(selected: str | None) -> Markup:
    """The time-zone select's options, the chosen one selected: built once per zone instead of a
    forty-option loop on every Settings page. Zone names are IANA identifiers, the same in every language."""
    chosen = selected or "UTC"
    return Markup("").join(
        Markup('<option value="{}"{}>{}</option>\n').format(
            zone, Markup(" selected") if zone == chosen else "", zone.replace("_", " ")
        )
        for zone in preferences.TIME_ZONES
    )


def _when(value: Any, fmt: str = "medium") -> str:
    """A date and time in the member's language and zone, with the zone named (UTC unless they chose one)."""
    zone = i18n.ZONE.get()
    return f"{i18n.when(value, fmt=fmt, time_zone=zone)} {zone or 'UTC'}"

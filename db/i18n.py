"""The shipped languages and their catalogs, for everything that speaks to a member in words.

Messages written in db/ (a `DomainError`'s message, a notice) are marked with `_` / `ngettext` here: they
are `Text`, a `str` holding the English message (so logs, the CLI and comparisons read English), that
renders in the language of the page being rendered (`ACTIVE`, set by web.templating.render) when a
template prints it. A notice is translated when it is queued, into the member's chosen language, since it
is stored and mailed as text. Values go in as %-style named placeholders, so the translation is looked up
before formatting.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from functools import cache, lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from markupsafe import escape

LOCALES = ("en", "de", "ar")  # English first: the default
NAMES = {"en": "English", "de": "Deutsch", "ar": "العربية"}
RTL = frozenset({"ar"})
CATALOGS = Path(__file__).resolve().parent.parent / "locales"
ACTIVE: ContextVar[str] = ContextVar("locale", default="en")
ZONE: ContextVar[str | None] = ContextVar("time_zone", default=None)


@cache
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of `locale` (English is the msgids themselves). `make` compiles the .mo files;
    when one is missing or older than its .po (a test run straight after editing a catalog), the .po is
    compiled in memory, so a page never silently falls back to English."""
    if locale not in LOCALES or locale == "en":
        return NullTranslations()
    po, mo = CATALOGS / locale / "LC_MESSAGES" / "messages.po", CATALOGS / locale / "LC_MESSAGES" / "messages.mo"
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return Translations.load(str(CATALOGS), [locale])
    buffer = BytesIO()
    with po.open("rb") as source:
        write_mo(buffer, read_po(source, locale=locale))
    buffer.seek(0)
    return Translations(buffer)


def known(locale: str | None) -> str | None:
    return locale if locale in LOCALES else None


class Text(str):
    """A message in English that renders translated: `str(t)` is English, `t.html()`/`{{ t }}` the page's
    language."""

    msgid: str
    plural: str | None
    n: int | None
    params: dict[str, Any]

    def __new__(cls, msgid: str, plural: str | None = None, n: int | None = None, **params: Any) -> Text:
        english = (msgid if plural is None or n == 1 else plural) % ({"num": n} | params)
        self = super().__new__(cls, english)
        self.msgid, self.plural, self.n, self.params = msgid, plural, n, params
        return self

    def in_locale(self, locale: str | None = None) -> str:
        t = translations(locale or ACTIVE.get())
        if self.plural is None:
            return t.gettext(self.msgid) % self.params if self.params else t.gettext(self.msgid)
        return t.ngettext(self.msgid, self.plural, self.n or 0) % ({"num": self.n} | self.params)

    def __html__(self) -> str:
        return str(escape(self.in_locale()))


def _(msgid: str, **params: Any) -> Text:
    """Mark a message for translation (extracted by `make translations`)."""
    return Text(msgid, **params)


def N_(msgid: str) -> str:
    """Mark a message kept as a constant (formatted later with `_(CONSTANT, **values)`)."""
    return msgid


def ngettext(singular: str, plural: str, n: int, **params: Any) -> Text:
    """A message with a number in it; `%(num)d` is the number. Arabic has six plural forms."""
    return Text(singular, plural, n, **params)


def translate(message: str, locale: str | None = None) -> str:
    """A message in `locale` (the page's language by default); a plain string is looked up as a msgid."""
    if isinstance(message, Text):
        return message.in_locale(locale)
    return translations(locale or ACTIVE.get()).gettext(message) if message else message


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def when(value: datetime, locale: str | None = None, time_zone: str | None = None, fmt: str = "medium") -> str:
    """A date and time as the member's language writes it, in their time zone (UTC unless they chose one)."""
    return _formatted(value, fmt, time_zone, locale or ACTIVE.get())


@lru_cache(maxsize=4096)
def _formatted(value: datetime, fmt: str, time_zone: str | None, locale: str) -> str:
    """Babel's formatting, remembered: a Sessions list shows the same few timestamps on every load, and
    formatting one costs more than the rest of its table row."""
    return format_datetime(value, fmt, tzinfo=zone(time_zone), locale=locale)

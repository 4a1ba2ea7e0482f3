"""Browser and system in words ("Chrome on Linux") from a User-Agent header, for the security log and the
Sessions list. ua-parser (the uap-core rules) does the parsing; the same few strings repeat on every page,
so the parsing is cached (the words are translated per call)."""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse_os, parse_user_agent

from db.i18n import N_, translate

UNKNOWN = N_("Unknown browser")
_BOTH = N_("%(browser)s on %(system)s")
_SYSTEM_ONLY = N_("A browser on %(system)s")
_OS_NAMES = {"Mac OS X": "macOS", "Ubuntu": "Linux", "Fedora": "Linux", "Debian": "Linux"}


@lru_cache(maxsize=1024)
def parts(ua: str) -> tuple[str, str]:
    """(browser, system) as ua-parser names them, each "" when not recognised."""
    if not ua.strip():
        return "", ""
    browser, system = parse_user_agent(ua), parse_os(ua)
    name = browser.family if browser and browser.family != "Other" else ""
    where = _OS_NAMES.get(system.family, system.family) if system and system.family != "Other" else ""
    return name, where


def describe(ua: str) -> str:
    """'Chrome on Linux', 'Firefox on Windows', 'Safari on iOS' in the page's language; the parts not
    recognised are left out. The product names stay as they are."""
    name, where = parts(ua)
    if name and where:
        return translate(_BOTH) % {"browser": name, "system": where}
    if where:
        return translate(_SYSTEM_ONLY) % {"system": where}
    return name or translate(UNKNOWN)

"""Browser and system in words ("Chrome on Linux") from a User-Agent header, for the security log and the
Sessions list. ua-parser (the uap-core rules) does the parsing; the same few strings repeat on every page,
so answers are cached."""

from __future__ import annotations

from functools import lru_cache

from ua_parser import parse_os, parse_user_agent

UNKNOWN = "Unknown browser"
_OS_NAMES = {"Mac OS X": "macOS", "Ubuntu": "Linux", "Fedora": "Linux", "Debian": "Linux"}


@lru_cache(maxsize=1024)
def describe(ua: str) -> str:
    """'Chrome on Linux', 'Firefox on Windows', 'Safari on iOS'; the parts not recognised are left out."""
    if not ua.strip():
        return UNKNOWN
    browser, system = parse_user_agent(ua), parse_os(ua)
    name = browser.family if browser and browser.family != "Other" else ""
    where = _OS_NAMES.get(system.family, system.family) if system and system.family != "Other" else ""
    if name and where:
        return f"{name} on {where}"
    return name or (f"A browser on {where}" if where else UNKNOWN)

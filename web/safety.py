"""Validating where a member may be sent after signing in or confirming it's them."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from starlette.convertors import IntegerConvertor

DEFAULT = "/"


def safe_next(raw: str | None, default: str = DEFAULT) -> str:
    """`raw` if it is a path on this site, else `default`.

    Refuses absolute and scheme-relative URLs, backslashes (browsers read `/\\evil` as `//evil`), control
    characters, and their percent-encoded forms, so no `next` can leave the origin.
    """
    if not raw or len(raw) > 512:
        return default
    decoded = unquote(unquote(raw))
    for value in (raw, decoded):
        if not value.startswith("/") or value.startswith("//") or "\\" in value:
            return default
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            return default
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return default
    return raw


class RowId(IntegerConvertor):
    """A database id in a path or filter: 1 to 9 digits, so no request reaches the database with a number
    it can't hold (past 2**63 SQLite overflows and PostgreSQL refuses)."""

    regex = "[1-9][0-9]{0,8}"

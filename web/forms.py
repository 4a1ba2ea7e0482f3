"""Reading form fields and phrasing refusals, the same way in every route."""

from __future__ import annotations

from db.throttle import Throttled

TOO_MANY = "Too many attempts. Try again in {seconds} seconds."
LOCKED = "Too many failed attempts: this account is locked. Ask an admin to unlock it."
SECOND_STEP_EXPIRED = "That took too long. Sign in again."


def field(form: object, name: str, limit: int = 256) -> str:
    """A form field as text, cut at `limit`. A NUL (which PostgreSQL text can't hold) becomes U+FFFD, so it
    fails validation like any other wrong character instead of failing the query."""
    value = form.get(name, "")  # type: ignore[attr-defined]
    return value[:limit].replace("\x00", "\ufffd") if isinstance(value, str) else ""


def throttled_message(exc: Throttled) -> str:
    return LOCKED if exc.locked else TOO_MANY.format(seconds=exc.retry_after())

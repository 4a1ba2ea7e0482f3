"""One clock for the model layer. SQLModel's datetime columns take and return aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)

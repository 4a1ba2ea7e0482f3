"""The member's language and time zone (Settings › Language): stored on the user row, so the one member
query carries them to every page, and notices are written in the language chosen."""

from __future__ import annotations

from sqlmodel import Session

from db import events, i18n
from db.errors import InvalidInput, NotFound
from db.events import Actor
from db.i18n import _
from db.models import User

# A short list people recognise beats 600 zone names in one select; UTC is "no choice".
TIME_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Vienna",
    "Europe/Zurich",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Africa/Cairo",
    "Asia/Riyadh",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
)


def save(session: Session, *, user_id: int, locale: str, time_zone: str, actor: Actor) -> None:
    """Keep the member's choice; an unknown language or zone is refused rather than silently ignored."""
    if i18n.known(locale) is None:
        raise InvalidInput("locale", _("Choose one of the languages listed."))
    if time_zone not in TIME_ZONES:
        raise InvalidInput("time_zone", _("Choose one of the time zones listed."))
    user = session.get(User, user_id)
    if user is None:
        raise NotFound()
    user.locale, user.time_zone = locale, None if time_zone == "UTC" else time_zone
    session.add(user)
    events.record(session, "preferences_set", actor=actor, target=user, detail=f"locale={locale} tz={time_zone}")
    session.commit()

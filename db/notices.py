"""Messages to a member about their account's security, shown in the app and mailed out of band.

A notice is written in the same transaction as the change it reports; `db.outbox.deliver` mails the ones not
yet mailed afterwards (a transactional outbox), so a failing mail server never undoes or blocks a change.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col, select

from db import i18n
from db.clock import now
from db.events import Actor, Owner
from db.i18n import N_, _
from db.models import Notice

NOT_YOU = N_("If this wasn't you, contact your administrator now and reset your password.")
SUBJECT = N_("%(app)s: security notice")


def add(session: Session, *, user: Owner, text: str, actor: Actor | None = None) -> None:
    """Queue a notice for `user`; where it came from is part of the text. The caller commits.

    Stored as text (it is mailed as it is shown), so it is translated now, into the language the member
    chose (English when they chose none: a notice has no browser to negotiate with), with the time in
    their time zone."""
    locale, zone = getattr(user, "locale", None), getattr(user, "time_zone", None)
    # The stamp in ISO order, which every language (and every mail client) reads alike.
    stamp = f"{i18n.when(now(), locale or 'en', zone, 'yyyy-MM-dd HH:mm')} {zone or 'UTC'}"
    where = i18n.translate(_(" from %(ip)s", ip=actor.ip), locale or "en") if actor and actor.ip else ""
    line = f"{i18n.translate(text, locale or 'en')} ({stamp}{where})"
    session.add(Notice(user_id=user.id or 0, text=line[:500]))


def unread(session: Session, *, user_id: int) -> list[Notice]:
    return list(session.exec(select(Notice).where(Notice.user_id == user_id, col(Notice.read_at).is_(None))))


def dismiss(session: Session, *, user_id: int) -> None:
    session.execute(
        update(Notice).where(col(Notice.user_id) == user_id, col(Notice.read_at).is_(None)).values(read_at=now())
    )
    session.commit()

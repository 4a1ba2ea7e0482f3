"""Messages to a member about their account's security, shown in the app and mailed out of band.

A notice is written in the same transaction as the change it reports; `db.outbox.deliver` mails the ones not
yet mailed afterwards (a transactional outbox), so a failing mail server never undoes or blocks a change.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, col, select

from db.clock import now
from db.events import Actor, Owner
from db.models import Notice

NOT_YOU = "If this wasn't you, contact your administrator now and reset your password."


def add(session: Session, *, user: Owner, text: str, actor: Actor | None = None) -> None:
    """Queue a notice for `user`; where it came from is part of the text. The caller commits."""
    where = f" from {actor.ip}" if actor and actor.ip else ""
    stamp = now().strftime("%Y-%m-%d %H:%M UTC")
    session.add(Notice(user_id=user.id or 0, text=f"{text} ({stamp}{where})"[:500]))


def unread(session: Session, *, user_id: int) -> list[Notice]:
    return list(session.exec(select(Notice).where(Notice.user_id == user_id, col(Notice.read_at).is_(None))))


def dismiss(session: Session, *, user_id: int) -> None:
    session.execute(
        update(Notice).where(col(Notice.user_id) == user_id, col(Notice.read_at).is_(None)).values(read_at=now())
    )
    session.commit()

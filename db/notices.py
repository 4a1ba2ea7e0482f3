"""Messages to a member about their account's security, shown in the app and mailed out of band.

A notice is written in the same transaction as the change it reports; `deliver` mails the ones not yet
mailed afterwards (a transactional outbox), so a failing mail server never undoes or blocks a change.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import update
from sqlmodel import Session, col, select

from db.clock import now
from db.events import Actor
from db.models import Notice, User

NOT_YOU = "If this wasn't you, contact your administrator now and reset your password."


def add(session: Session, *, user: User, text: str, actor: Actor | None = None) -> None:
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


class Mailer:
    """SMTP when `smtp_url` is set (smtp://user:pass@host:port), else a text file outbox."""

    def __init__(self, *, smtp_url: str | None, outbox: Path, sender: str) -> None:
        self.smtp_url = smtp_url
        self.outbox = outbox
        self.sender = sender

    def send(self, *, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        if not self.smtp_url:
            self.outbox.parent.mkdir(parents=True, exist_ok=True)
            with self.outbox.open("a", encoding="utf-8") as f:
                f.write(message.as_string() + "\n")
            return
        url = urlsplit(self.smtp_url)
        with smtplib.SMTP(url.hostname or "127.0.0.1", url.port or 25, timeout=10) as smtp:
            if url.username:
                smtp.login(unquote(url.username), unquote(url.password or ""))
            smtp.send_message(message)


def deliver(session: Session, *, mailer: Mailer, app_name: str) -> int:
    """Mail every notice not yet mailed; returns how many went out.

    Each notice is claimed by a conditional UPDATE before it is sent, so several workers polling the same
    outbox never mail one twice; a send that fails gives the claim back for the next round.
    """
    rows = session.exec(
        select(Notice, User).join(User, col(User.id) == Notice.user_id).where(col(Notice.mailed_at).is_(None))
    ).all()
    sent = 0
    for notice, user in rows:
        claimed = session.execute(
            update(Notice).where(col(Notice.id) == notice.id, col(Notice.mailed_at).is_(None)).values(mailed_at=now())
        )
        session.commit()
        if claimed.rowcount != 1:
            continue
        try:
            mailer.send(to=user.email, subject=f"{app_name}: security notice", body=f"{notice.text}\n\n{NOT_YOU}\n")
        except (OSError, smtplib.SMTPException):
            session.execute(update(Notice).where(col(Notice.id) == notice.id).values(mailed_at=None))
            session.commit()
            break
        sent += 1
    return sent

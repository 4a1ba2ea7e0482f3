"""Mailing queued security notices: each at least once, never twice at once, retried with backoff.

A worker takes a notice by a lease (`next_attempt_at` moved to now + LEASE, `attempts` counted) in a
committed conditional UPDATE before it talks to the relay, and sets `mailed_at` only after the relay
accepted the message. So a worker that dies mid-send leaves the notice to whoever comes after the lease,
two workers never hold one notice at once, and a restart loses nothing: all of it is in the database.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import or_, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from db import i18n, mail
from db.clock import now
from db.i18n import _
from db.models import Notice, User
from db.notices import NOT_YOU, SUBJECT

log = logging.getLogger("chat360.mail")

LEASE = timedelta(minutes=10)  # far longer than a send can take (mail.TIMEOUT per socket operation)
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)
BATCH = 100


class Mailer:
    """SMTP when `smtp_url` is set (see db.mail for the schemes), else a text file outbox."""

    def __init__(self, *, smtp_url: str | None, outbox: Path, sender: str, ca_file: Path | None = None) -> None:
        self.relay = mail.parse_relay(smtp_url) if smtp_url else None
        self.outbox = outbox
        self.sender = sender
        self.ca_file = ca_file

    def send(self, *, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        if self.relay is None:
            self.outbox.parent.mkdir(parents=True, exist_ok=True)
            with self.outbox.open("a", encoding="utf-8") as f:
                f.write(message.as_string() + "\n")
            return
        mail.send(self.relay, message, ca_file=self.ca_file)

    def __str__(self) -> str:
        return str(self.relay) if self.relay else str(self.outbox)


def backoff(attempts: int) -> timedelta:
    """30 s after the first failure, doubling up to an hour: a relay that is down is not hammered."""
    wait: timedelta = FIRST_RETRY * 2 ** min(attempts - 1, 16)
    return min(wait, LAST_RETRY)


def _due(at: datetime) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return col(Notice.mailed_at).is_(None), or_(
        col(Notice.next_attempt_at).is_(None), col(Notice.next_attempt_at) <= at
    )


def claim(session: Session, *, notice_id: int, at: datetime) -> int | None:
    """Lease the notice until `at + LEASE`; the attempt number it returns fences our later update."""
    attempt = session.execute(
        update(Notice)
        .where(col(Notice.id) == notice_id, *_due(at))
        .values(attempts=col(Notice.attempts) + 1, next_attempt_at=at + LEASE)
        .returning(col(Notice.attempts))
    ).scalar_one_or_none()
    session.commit()
    return attempt


def mark_mailed(session: Session, *, notice_id: int, at: datetime) -> None:
    session.execute(update(Notice).where(col(Notice.id) == notice_id).values(mailed_at=at, next_attempt_at=None))
    session.commit()


def postpone(session: Session, *, notice_id: int, attempt: int, at: datetime) -> datetime:
    """Give the lease back with a retry time; a lease that expired and was taken over is left alone."""
    retry_at = at + backoff(attempt)
    session.execute(
        update(Notice)
        .where(col(Notice.id) == notice_id, col(Notice.attempts) == attempt, col(Notice.mailed_at).is_(None))
        .values(next_attempt_at=retry_at)
    )
    session.commit()
    return retry_at


def deliver(session: Session, *, mailer: Mailer, app_name: str, at: datetime | None = None) -> int:
    """Mail the notices that are due at `at` (default now); returns how many the relay accepted.

    The first failure ends the round: when the relay is down, every other notice would fail the same way.
    """
    at = at or now()
    rows = session.exec(
        select(Notice.id, User.email, Notice.text, User.locale)
        .join(User, col(User.id) == Notice.user_id)
        .where(*_due(at))
        .order_by(col(Notice.id))
        .limit(BATCH)
    ).all()
    sent = 0
    for notice_id, email, text, locale in rows:
        attempt = claim(session, notice_id=notice_id or 0, at=at)
        if attempt is None:
            continue  # another worker holds it
        try:
            subject, footer = (
                i18n.translate(_(SUBJECT, app=app_name), locale or "en"),
                i18n.translate(NOT_YOU, locale or "en"),
            )
            mailer.send(to=email, subject=subject, body=f"{text}\n\n{footer}\n")
        except mail.SEND_ERRORS as exc:
            retry_at = postpone(session, notice_id=notice_id or 0, attempt=attempt, at=at)
            log.warning(
                "security notice %s not mailed via %s (attempt %d, next try %s): %s: %s",
                *(notice_id, mailer, attempt, retry_at.isoformat(timespec="seconds"), type(exc).__name__, exc),
            )
            break
        mark_mailed(session, notice_id=notice_id or 0, at=at)
        sent += 1
    return sent

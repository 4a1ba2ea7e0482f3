"""WebAuthn challenges: random, single use, bound to the browser session, and dead after 5 minutes.

The browser's cookie session keeps a random handle; the table keeps only its SHA-256 next to the challenge,
so a challenge issued to one browser can't be answered from another. Taking one is a single conditional
UPDATE (unused and unexpired), so two requests or two processes can never both use it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, generate_challenge

from db.clock import now
from db.models import WebAuthnChallenge
from db.sql import affected, insert_row

TTL = timedelta(minutes=5)
PURPOSES = ("register", "second_step", "step_up", "sign_in")


@dataclass(frozen=True)
class Taken:
    """What a consumed challenge was issued for."""

    challenge: bytes
    user_id: int | None
    user_handle: str


def _digest(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def issue(
    session: Session,
    *,
    purpose: str,
    user_id: int | None,
    user_handle: str = "",
    challenge: bytes | None = None,
) -> tuple[str, bytes]:
    """Store a fresh challenge (tests pass a recorded one) and return (handle for the cookie session, challenge).

    Does not commit: the options function that calls it does, once."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}")
    handle = secrets.token_urlsafe(32)
    value = challenge or generate_challenge()
    insert_row(
        session,
        WebAuthnChallenge,
        handle_hash=_digest(handle),
        challenge=bytes_to_base64url(value),
        purpose=purpose,
        user_id=user_id,
        user_handle=user_handle,
        expires_at=now() + TTL,
    )
    return handle, value


def take(session: Session, *, handle: str, purpose: str, user_id: int | None) -> Taken | None:
    """Consume the challenge behind `handle` if it is unused, unexpired, for `purpose` and for `user_id`.

    Commits at once, so a challenge is burnt even when the response that came with it is then refused."""
    if not handle:
        return None
    where = (
        col(WebAuthnChallenge.handle_hash) == _digest(handle),
        col(WebAuthnChallenge.purpose) == purpose,
        col(WebAuthnChallenge.used_at).is_(None),
        col(WebAuthnChallenge.expires_at) > now(),
    )
    taken = session.execute(update(WebAuthnChallenge).where(*where).values(used_at=now()))
    session.commit()
    if affected(taken) != 1:
        return None
    row = session.exec(select(WebAuthnChallenge).where(WebAuthnChallenge.handle_hash == _digest(handle))).one()
    if row.user_id != user_id:
        return None
    return Taken(base64url_to_bytes(row.challenge), row.user_id, row.user_handle)


def purge(session: Session) -> int:
    """Delete expired challenges (the hourly housekeeping, not each sign-in page: an expired one is refused
    when it is used anyway, so this only keeps the table small). Commits; the number deleted."""
    deleted = affected(session.execute(delete(WebAuthnChallenge).where(col(WebAuthnChallenge.expires_at) <= now())))
    session.commit()
    return deleted

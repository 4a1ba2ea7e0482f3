"""Keeping a member's second factors usable: they confirm they saved their backup codes, and some weeks
after turning MFA on they are asked once whether they still have their authenticator and their codes.

A member who loses their phone and never saved their codes is locked out (an admin has to reset them);
these two prompts are how GitHub and others keep that rare.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, update
from sqlmodel import Session, col, select

from db import events
from db.clock import now
from db.events import Actor, Owner
from db.models import PasskeyCredential, TotpDevice, User


def codes_unsaved(session: Session, *, user_id: int) -> None:
    """New codes were shown: nothing confirms yet that they were saved. The caller commits."""
    session.execute(update(User).where(col(User.id) == user_id).values(backup_codes_saved_at=None))


def mark_codes_saved(session: Session, *, user: Owner, actor: Actor) -> None:
    """The member says they saved the backup codes shown last; logged, as every change is."""
    session.execute(update(User).where(col(User.id) == user.id).values(backup_codes_saved_at=now()))
    events.record(session, "backup_codes_saved", actor=actor, target=user)
    session.commit()


def enabled_since(session: Session, *, user_id: int) -> datetime | None:
    """When the member's current MFA began: their authenticator's confirmation, or their first passkey."""
    row = session.execute(_ENABLED_SINCE, {"user_id": user_id}).one()
    found: datetime | None = row[0] if row[0] is not None else row[1]
    return found


_ENABLED_SINCE = select(  # both in one statement, built once
    select(TotpDevice.confirmed_at).where(TotpDevice.user_id == bindparam("user_id")).limit(1).scalar_subquery(),
    select(func.min(PasskeyCredential.created_at))
    .where(PasskeyCredential.user_id == bindparam("user_id"))
    .scalar_subquery(),
)


def checkup_due(session: Session, *, user: User, days: int) -> bool:
    """Ask at this sign-in? `days` after MFA was turned on, unless answered since (turning MFA on again
    starts over, as the answer then predates it). Decided once per sign-in, never per request."""
    if days <= 0:
        return False
    since = enabled_since(session, user_id=user.id or 0)
    if since is None or now() - since < timedelta(days=days):
        return False
    done = user.mfa_checkup_at
    return done is None or done < since


def complete_checkup(session: Session, *, user: Owner, actor: Actor) -> None:
    """The member still has their authenticator and backup codes: record when, and log it."""
    session.execute(update(User).where(col(User.id) == user.id).values(mfa_checkup_at=now()))
    events.record(session, "mfa_checkup", actor=actor, target=user)
    session.commit()

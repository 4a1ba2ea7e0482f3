"""Remembered browsers: "Remember this browser for N days" at the second step, when the org policy allows
it for the member's role. Such a browser skips the second step at its next sign-ins, never the password, and
never "Confirm it's you" (its sessions start unverified).

The browser keeps a random 256-bit token in a long-lived cookie of its own; the table keeps only its
SHA-256, so a copy of the database signs nobody in. Everything that ends a member's other sessions (a new
password, an MFA change, an admin's reset, "Sign out other sessions") forgets all their browsers too
(db/sessions.py `end_others`).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from db import events, notices
from db.clock import now
from db.errors import NotFound
from db.events import Actor, Owner
from db.i18n import ngettext
from db.models import OrgPolicy, RememberedBrowser, User
from db.sessions import digest
from db.sql import affected
from db.useragents import describe

MAX_DAYS = 90


def allowed_days(policy: OrgPolicy | None, *, role: str) -> int:
    """For how many days the policy lets this role remember a browser (0: not at all)."""
    if policy is None:
        return 0
    allowed = policy.remember_admins if role == "admin" else policy.remember_agents
    return max(0, min(policy.remember_days, MAX_DAYS)) if allowed else 0


def remember(session: Session, *, user: User, days: int, actor: Actor) -> str:
    """Remember this browser for `days` (the caller checked the policy); returns the cookie's token.
    Logged and noticed: a browser that skips the second step is worth a mail. The caller commits."""
    token = secrets.token_urlsafe(32)
    at = now()
    row = RememberedBrowser(
        user_id=user.id or 0,
        token_hash=digest(token),
        created_at=at,
        expires_at=at + timedelta(days=days),
        ip=actor.ip[:64],
        user_agent=actor.user_agent[:255],
    )
    session.add(row)
    name = describe(actor.user_agent)
    events.record(session, "browser_remembered", actor=actor, target=user, detail=f"days={days} browser={name}")
    notices.add(
        session,
        user=user,
        text=ngettext(
            "%(name)s was remembered for %(num)d day and may skip the second step",
            "%(name)s was remembered for %(num)d days and may skip the second step",
            days,
            name=name,
        ),
    )
    return token


def recognise(session: Session, *, user: User, token: str | None) -> bool:
    """Whether `token` is a remembered browser of `user` that the policy still allows: not expired, and
    not older than the policy's current maximum (lowering it shortens browsers remembered before)."""
    if not token:
        return False
    days = allowed_days(session.get(OrgPolicy, 1), role=user.role)
    if days == 0:
        return False
    at = now()
    found = session.execute(
        update(RememberedBrowser)
        .where(col(RememberedBrowser.token_hash) == digest(token), col(RememberedBrowser.user_id) == user.id)
        .where(col(RememberedBrowser.expires_at) > at, col(RememberedBrowser.created_at) > at - timedelta(days=days))
        .values(last_used_at=at)
    )
    return affected(found) == 1


def listed(session: Session, *, user_id: int) -> list[RememberedBrowser]:
    query = select(RememberedBrowser).where(RememberedBrowser.user_id == user_id, RememberedBrowser.expires_at > now())
    return list(session.exec(query.order_by(col(RememberedBrowser.created_at).desc())))


def forget(session: Session, *, user: Owner, browser_id: int, actor: Actor) -> None:
    """Forget one of the member's remembered browsers: it asks for the second step again."""
    row = session.get(RememberedBrowser, browser_id)
    if row is None or row.user_id != user.id:
        raise NotFound()
    name = describe(row.user_agent)
    session.delete(row)
    events.record(session, "browser_forgotten", actor=actor, target=user, detail=f"browser={name}")
    session.commit()


def forget_all(session: Session, *, user_id: int) -> int:
    """Forget every remembered browser of a member. The caller logs and commits."""
    return affected(session.execute(delete(RememberedBrowser).where(col(RememberedBrowser.user_id) == user_id)))

"""The security activity log. Entries name who did what to whom from where; never a code, secret or password."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import bindparam, delete, func, update
from sqlmodel import Session, col, select

from db.clock import now
from db.i18n import _
from db.models import SecurityEvent, User
from db.sql import affected, columns, insert_row

# Failures by anonymous clients (forged posts, failed sign-ins, throttled attempts) are one row per address,
# kind and target per window; the rest of the window only counts, so nobody can flood the log.
BOUND_WINDOW = timedelta(minutes=10)

KINDS = {
    "sign_in": _("Signed in"),
    "sign_in_failed": _("Sign-in failed"),
    "second_factor_failed": _("Second-factor check failed"),
    "throttled": _("Attempts throttled"),
    "replay_refused": _("Reused code refused"),
    "csrf_refused": _("Forged request refused"),
    "sign_out": _("Signed out"),
    "sessions_revoked": _("Other sessions signed out"),
    "session_ended": _("Session signed out"),
    "browser_remembered": _("Browser remembered"),
    "browser_forgotten": _("Remembered browser forgotten"),
    "mfa_enabled": _("MFA enabled"),
    "mfa_disabled": _("MFA disabled"),
    "mfa_reset": _("MFA reset"),
    "backup_code_used": _("Backup code used"),
    "backup_codes_regenerated": _("Backup codes regenerated"),
    "backup_codes_saved": _("Backup codes saved"),
    "mfa_checkup": _("2FA check-up done"),
    "step_up": _("Identity confirmed"),
    "policy_changed": _("MFA policy changed"),
    "member_added": _("Member added"),
    "role_changed": _("Role changed"),
    "password_set": _("Password set"),
    "throttle_lifted": _("Lock lifted"),
    "member_removed": _("Member removed"),
    "webhook_changed": _("Webhook changed"),
    "billing_changed": _("Billing changed"),
    "passkey_added": _("Passkey added"),
    "passkey_renamed": _("Passkey renamed"),
    "passkey_removed": _("Passkey removed"),
    "passkey_clone_suspected": _("Passkey may be cloned"),
    "preferences_set": _("Language changed"),
}


class Owner(Protocol):
    """Whom an event or a notice is about: a `User` row, or the signed-in member's `Account`."""

    @property
    def id(self) -> int | None: ...
    @property
    def email(self) -> str: ...


@dataclass(frozen=True)
class Actor:
    """Who is acting and from where; `session_id` is the acting browser's session row, kept when others end."""

    id: int | None
    label: str
    ip: str = ""
    user_agent: str = ""
    session_id: int | None = None

    @classmethod
    def of(cls, user: User, *, ip: str = "", user_agent: str = "", session_id: int | None = None) -> Actor:
        return cls(user.id, user.email, ip, user_agent, session_id)


OPERATOR = Actor(None, "operator/CLI")
# How the log's stored words read on the Security activity page (the CSV export keeps the stored ones).
OUTCOMES = {"success": _("Success"), "failure": _("Failure")}
ACTORS = {OPERATOR.label: _("Operator (command line)")}


def record(
    session: Session,
    kind: str,
    *,
    actor: Actor,
    target: Owner | None = None,
    target_label: str = "",
    outcome: str = "success",
    detail: str = "",
) -> None:
    """Add an entry to the caller's transaction (it commits with the change it describes). An anonymous
    failure that repeats one already logged in the window only counts on that row (`repeats`)."""
    if actor.id is None and outcome == "failure" and _counted(session, kind, ip=actor.ip[:64], target=target):
        return
    insert_row(
        session,
        SecurityEvent,
        kind=kind,
        outcome=outcome,
        actor_id=actor.id,
        actor_label=actor.label[:254],
        target_id=target.id if target else None,
        target_label=(target.email if target else target_label)[:254],
        ip=actor.ip[:64],
        user_agent=actor.user_agent[:255],
        detail=detail[:255],
    )


def _counted(session: Session, kind: str, *, ip: str, target: Owner | None) -> bool:
    """Count this failure on the window's row for the same address, kind and target, if there is one."""
    target_id = target.id if target else None
    same = select(SecurityEvent.id).where(
        SecurityEvent.kind == kind,
        SecurityEvent.ip == ip,
        col(SecurityEvent.actor_id).is_(None),
        col(SecurityEvent.target_id).is_(None) if target_id is None else SecurityEvent.target_id == target_id,
        SecurityEvent.at >= now() - BOUND_WINDOW,
    )
    row_id = session.exec(same.order_by(col(SecurityEvent.id).desc()).limit(1)).first()
    if row_id is None:
        return False
    session.execute(_BUMP, {"row_id": row_id})
    return True


_E = columns(SecurityEvent)
_BUMP = update(_E.id.table).where(_E.id == bindparam("row_id")).values(repeats=_E.repeats + 1)


def prune(session: Session, *, older_than_days: int) -> int:
    """Delete entries older than the retention period (EVENT_RETENTION_DAYS); the number deleted."""
    cutoff = now() - timedelta(days=older_than_days)
    deleted = affected(session.execute(delete(SecurityEvent).where(col(SecurityEvent.at) < cutoff)))
    session.commit()
    return int(deleted or 0)


@dataclass(frozen=True)
class EventFilter:
    member_id: int | None = None
    kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def list_events(session: Session, *, where: EventFilter, limit: int = 500) -> list[SecurityEvent]:
    """Newest first. A member filter matches events they did and events done to them."""
    query = select(SecurityEvent).order_by(col(SecurityEvent.id).desc()).limit(limit)
    if where.member_id is not None:
        query = query.where((SecurityEvent.actor_id == where.member_id) | (SecurityEvent.target_id == where.member_id))
    if where.kind:
        query = query.where(SecurityEvent.kind == where.kind)
    if where.since:
        query = query.where(SecurityEvent.at >= where.since)
    if where.until:
        query = query.where(SecurityEvent.at < where.until)
    return list(session.exec(query))


def failures_since(session: Session, *, user_id: int, since: datetime | None) -> int:
    """Failed second-factor checks against a member since a moment (their previous sign-in)."""
    at_least = since or datetime(1970, 1, 1, tzinfo=UTC)  # no previous sign-in: every failure counts
    return int(session.execute(_FAILURES, {"user_id": user_id, "since": at_least}).scalar_one())


_FAILURES = select(func.coalesce(func.sum(1 + _E.repeats), 0)).where(
    _E.target_id == bindparam("user_id"), _E.kind == "second_factor_failed", _E.at > bindparam("since")
)

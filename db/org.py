"""The organisation: its MFA policy and its members as admins see them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from sqlalchemy import func
from sqlmodel import Session, col, select

from db import events, links, signins, throttle, users
from db.clock import now
from db.events import Actor
from db.models import ROLES, OrgPolicy, RecoveryCode, Throttle, TotpDevice, User

MAX_GRACE_DAYS = 90


class LastAdmin(Exception):
    """The change would leave the organisation without an admin."""


def get_policy(session: Session) -> OrgPolicy:
    return session.get(OrgPolicy, 1) or OrgPolicy(id=1)


def save_policy(
    session: Session, *, require_admins: bool, require_agents: bool, grace_days: str, actor: Actor
) -> OrgPolicy:
    """Store the policy (the route has checked step-up). Grace is whole days, 0 to MAX_GRACE_DAYS."""
    days = grace_days.strip() or "0"
    if not (days.isascii() and days.isdigit() and int(days) <= MAX_GRACE_DAYS):
        raise users.InvalidInput("grace_days", f"Enter a whole number of days from 0 to {MAX_GRACE_DAYS}.")
    policy = get_policy(session)
    policy.require_admins, policy.require_agents, policy.grace_days = require_admins, require_agents, int(days)
    policy.updated_at = now()
    session.add(policy)
    detail = f"admins={require_admins} agents={require_agents} grace_days={days}"
    events.record(session, "policy_changed", actor=actor, detail=detail)
    session.commit()
    return policy


@dataclass(frozen=True)
class MemberRow:
    user: User
    mfa_enabled: bool
    codes_left: int
    locked_until: datetime | None


def list_members(session: Session) -> list[MemberRow]:
    """Every member with MFA state, backup codes left and any lock (second factor or password)."""
    codes_left = (
        select(func.count(col(RecoveryCode.id)))
        .where(RecoveryCode.user_id == User.id, col(RecoveryCode.used_at).is_(None))
        .scalar_subquery()
    )
    query = (
        select(User, TotpDevice.id, codes_left)
        .outerjoin(TotpDevice, col(TotpDevice.user_id) == User.id)
        .order_by(col(User.email))
    )
    at = now()
    locks = dict(session.exec(select(Throttle.key, Throttle.locked_until).where(col(Throttle.locked_until) > at)).all())
    rows = []
    for user, device_id, left in session.exec(query):
        held = [locks.get(throttle.user_key(user.id or 0)), locks.get(throttle.email_key(user.email))]
        rows.append(MemberRow(user, device_id is not None, left or 0, max((h for h in held if h), default=None)))
    return rows


def get_member(session: Session, *, user_id: int) -> User | None:
    return session.get(User, user_id)


def add_member(session: Session, *, email: str, role: str, hasher: PasswordHasher, actor: Actor) -> tuple[User, str]:
    """A member without a password, and the token of the one-time link with which they choose one."""
    user = users.create_user(session, email=email, role=role, password=None, hasher=hasher, actor=actor)
    return user, links.issue_set_password_link(session, user=user)


def change_role(session: Session, *, user: User, role: str, actor: Actor) -> None:
    users.check_role(role)
    if user.role == "admin" and role != "admin" and _admin_count(session) <= 1:
        raise LastAdmin()
    user.role = role
    session.add(user)
    signins.end_others(session, user_id=user.id or 0, keep=actor.session_id)
    events.record(session, "role_changed", actor=actor, target=user, detail=f"role={role}")
    session.commit()


def lift_lock(session: Session, *, user: User, actor: Actor) -> None:
    throttle.clear(session, throttle.user_key(user.id or 0), throttle.email_key(user.email))
    events.record(session, "throttle_lifted", actor=actor, target=user)
    session.commit()


def _admin_count(session: Session) -> int:
    return session.exec(select(func.count(col(User.id))).where(User.role == "admin")).one()


__all__ = ["ROLES", "LastAdmin", "MemberRow", "add_member", "change_role", "get_policy", "list_members"]

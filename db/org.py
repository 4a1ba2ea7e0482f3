"""The organisation: its MFA policy and its members as admins see them."""

from __future__ import annotations

from argon2 import PasswordHasher
from sqlalchemy import delete, exists, or_, true, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from db import devices, events, links, sessions, throttle, users
from db.clock import now
from db.errors import DomainError, InvalidInput, NotFound
from db.events import Actor
from db.i18n import _
from db.models import OrgPolicy, User
from db.sql import affected

MAX_GRACE_DAYS = 90


class LastAdmin(DomainError):
    """The change would leave the organisation without an admin."""

    message = _("The organization needs at least one admin.")
    field = "role"


def get_policy(session: Session) -> OrgPolicy:
    return session.get(OrgPolicy, 1) or OrgPolicy(id=1)


def save_policy(
    session: Session,
    *,
    require_admins: bool,
    require_agents: bool,
    grace_days: str,
    actor: Actor,
    remember_admins: bool = False,
    remember_agents: bool = False,
    remember_days: str = "",
) -> OrgPolicy:
    """Store the policy (the route has checked step-up). Grace is whole days, 0 to MAX_GRACE_DAYS; browsers
    may be remembered for 1 to devices.MAX_DAYS days.

    A role's grace period runs from when the policy started to require MFA of it: saving again, or
    changing the other role, does not restart it."""
    days = grace_days.strip() or "0"
    if not (days.isascii() and days.isdigit() and int(days) <= MAX_GRACE_DAYS):
        raise InvalidInput("grace_days", _("Enter a whole number of days from 0 to %(max)d.", max=MAX_GRACE_DAYS))
    policy = get_policy(session)
    keep = remember_days.strip() or str(policy.remember_days)
    if not (keep.isascii() and keep.isdigit() and 1 <= int(keep) <= devices.MAX_DAYS):
        raise InvalidInput("remember_days", _("Enter a whole number of days from 1 to %(max)d.", max=devices.MAX_DAYS))
    policy.remember_admins, policy.remember_agents, policy.remember_days = remember_admins, remember_agents, int(keep)
    at = now()
    policy.admins_since = (policy.admins_since or at) if require_admins else None
    policy.agents_since = (policy.agents_since or at) if require_agents else None
    policy.require_admins, policy.require_agents, policy.grace_days = require_admins, require_agents, int(days)
    policy.updated_at = at
    session.add(policy)
    detail = f"admins={require_admins} agents={require_agents} grace_days={days}"
    detail += f" remember_admins={remember_admins} remember_agents={remember_agents} remember_days={keep}"
    events.record(session, "policy_changed", actor=actor, detail=detail)
    session.commit()
    return policy


def get_member(session: Session, *, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound()
    return user


def add_member(session: Session, *, email: str, role: str, hasher: PasswordHasher, actor: Actor) -> tuple[User, str]:
    """A member without a password, and the token of the one-time link with which they choose one."""
    user = users.create_user(session, email=email, role=role, password=None, hasher=hasher, actor=actor)
    return user, links.issue_set_password_link(session, user=user)


def _keeps_an_admin(session: Session, user_id: int) -> ColumnElement[bool]:
    """A condition true when the member is not an admin or another admin remains.

    On PostgreSQL the admins' rows are locked first, in id order, so two parallel demotions of the last
    two admins run one after the other and the second sees the first; SQLite runs one writer at a time,
    and the conditional statement is then atomic by itself."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(User.id).where(User.role == "admin").order_by(col(User.id)).with_for_update())
    others = exists().where(col(User.role) == "admin", col(User.id) != user_id)
    return or_(col(User.role) != "admin", others)


def change_role(session: Session, *, user_id: int, role: str, actor: Actor) -> User:
    """A new role; demoting the last admin is refused in the same statement that would do it."""
    users.check_role(role)
    condition = _keeps_an_admin(session, user_id) if role != "admin" else true()
    changed = session.execute(update(User).where(col(User.id) == user_id, condition).values(role=role))
    if affected(changed) != 1:
        session.rollback()
        raise LastAdmin() if session.get(User, user_id) else NotFound()
    user = session.get(User, user_id)
    assert user is not None
    sessions.end_others(session, user_id=user_id, keep=actor.session_id)
    events.record(session, "role_changed", actor=actor, target=user, detail=f"role={role}")
    session.commit()
    return user


def remove_member(session: Session, *, user_id: int, actor: Actor) -> User:
    """Remove a member and everything of theirs; the last admin can't be removed."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound()
    email = user.email
    session.expunge(user)
    session.commit()  # end the read: on SQLite the DELETE then starts from a current snapshot
    removed = session.execute(delete(User).where(col(User.id) == user_id, _keeps_an_admin(session, user_id)))
    if affected(removed) != 1:
        session.rollback()
        raise LastAdmin()
    events.record(session, "member_removed", actor=actor, target_label=email, detail=f"id={user_id}")
    session.commit()
    return user


def lift_lock(session: Session, *, user_id: int, actor: Actor) -> User:
    user = get_member(session, user_id=user_id)
    throttle.clear(session, throttle.user_key(user_id), throttle.email_key(user.email))
    events.record(session, "throttle_lifted", actor=actor, target=user)
    session.commit()
    return user

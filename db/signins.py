"""Signed-in sessions kept on the server, so a cookie can be revoked although it is validly signed.

The cookie holds a random 256-bit token; the table holds its SHA-256. Loading the member behind a cookie,
with their authenticator, the org policy and the number of unused backup codes, is one SQL statement.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func
from sqlmodel import Session, col, select

from db.clock import now
from db.models import AuthSession, OrgPolicy, RecoveryCode, TotpDevice, User


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Member:
    user: User
    auth: AuthSession
    device: TotpDevice | None
    policy: OrgPolicy | None
    codes_left: int

    @property
    def mfa_enabled(self) -> bool:
        return self.device is not None

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"

    @property
    def mfa_required(self) -> bool:
        """The org policy asks for MFA on this member's role."""
        p = self.policy
        return bool(p and (p.require_admins if self.is_admin else p.require_agents))

    @property
    def enrolment_deadline(self) -> datetime | None:
        """Until when a member under the policy may still sign in without MFA (None: no grace period)."""
        p = self.policy
        if not self.mfa_required or p is None or p.grace_days <= 0:
            return None
        return max(p.updated_at, self.user.created_at) + timedelta(days=p.grace_days)

    @property
    def must_enrol(self) -> bool:
        if not self.mfa_required or self.mfa_enabled:
            return False
        deadline = self.enrolment_deadline
        return deadline is None or deadline <= now()


def start(session: Session, *, user: User, ip: str, user_agent: str) -> str:
    """A new signed-in session for `user`, verified now; returns the cookie token. The caller commits."""
    token = secrets.token_urlsafe(32)
    session.add(AuthSession(token_hash=digest(token), user_id=user.id, ip=ip[:64], user_agent=user_agent[:255]))
    return token


_codes_left = (
    select(func.count(col(RecoveryCode.id)))
    .where(RecoveryCode.user_id == AuthSession.user_id, col(RecoveryCode.used_at).is_(None))
    .scalar_subquery()
)
# Built once: every signed-in request runs it, and building it costs more than the query itself.
_MEMBER_BY_TOKEN = (
    select(AuthSession, User, TotpDevice, OrgPolicy, _codes_left)
    .join(User, col(User.id) == AuthSession.user_id)
    .outerjoin(TotpDevice, col(TotpDevice.user_id) == AuthSession.user_id)
    .outerjoin(OrgPolicy, col(OrgPolicy.id) == 1)
    .where(col(AuthSession.token_hash) == bindparam("token_hash"))
)


def load(session: Session, *, token: str) -> Member | None:
    """The member a cookie token belongs to, in one statement, or None when the session was revoked."""
    row = session.exec(_MEMBER_BY_TOKEN, params={"token_hash": digest(token)}).first()
    if row is None:
        return None
    auth, user, device, policy, left = row
    return Member(user=user, auth=auth, device=device, policy=policy, codes_left=left or 0)


def rotate(session: Session, *, session_id: int, verified: bool) -> str:
    """A new token for an existing session (privilege changed); marks it verified now if asked. Caller commits."""
    token = secrets.token_urlsafe(32)
    row = session.get(AuthSession, session_id)
    if row is None:
        raise LookupError("session ended")
    row.token_hash = digest(token)
    if verified:
        row.verified_at = now()
    session.add(row)
    return token


def end(session: Session, *, token: str) -> None:
    session.execute(delete(AuthSession).where(col(AuthSession.token_hash) == digest(token)))
    session.commit()


def end_others(session: Session, *, user_id: int, keep: int | None) -> int:
    """End every session of a member but `keep` (the caller's own). Returns how many ended; caller commits."""
    query = delete(AuthSession).where(col(AuthSession.user_id) == user_id)
    if keep is not None:
        query = query.where(col(AuthSession.id) != keep)
    return session.execute(query).rowcount or 0

"""The signed-in member as one request sees them: who they are, which factors they have, what the org
policy asks of them. Built from one Core row (db.sessions.load), read-only: a service that changes the
account loads the row it changes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from db import listing
from db.clock import now


@dataclass(frozen=True)
class Account:
    """The few columns of `user` that pages and security events need."""

    id: int
    email: str
    role: str
    created_at: datetime
    locale: str | None = None  # chosen in Settings; None follows the browser
    time_zone: str | None = None


@dataclass(frozen=True)
class SessionInfo:
    id: int
    created_at: datetime
    verified_at: datetime


@dataclass(frozen=True)
class Policy:
    require_admins: bool = False
    require_agents: bool = False
    grace_days: int = 0
    admins_since: datetime | None = None
    agents_since: datetime | None = None


@dataclass(frozen=True)
class Member:
    user: Account
    auth: SessionInfo
    has_totp: bool
    passkeys: int
    codes_left: int
    policy: Policy
    # Only when the statement asked for them (Settings): the member's signed-in sessions, remembered browsers.
    signed_in: tuple[listing.SignedIn, ...] = ()
    remembered: tuple[listing.Remembered, ...] = ()
    codes_saved: bool = True  # the member confirmed they saved the backup codes last shown

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Member:
        return cls(
            user=Account(
                row["id"], row["email"], row["role"], row["created_at"], row.get("locale"), row.get("time_zone")
            ),
            auth=SessionInfo(row["session_id"], row["signed_in_at"], row["verified_at"]),
            has_totp=row["totp_id"] is not None,
            passkeys=row["passkeys"] or 0,
            codes_left=row["codes_left"] or 0,
            policy=Policy(
                bool(row["require_admins"]),
                bool(row["require_agents"]),
                row["grace_days"] or 0,
                row["admins_since"],
                row["agents_since"],
            ),
            signed_in=listing.signed_in(row.get("signed_in_list")),
            remembered=listing.browsers(row.get("browsers_list")),
            codes_saved=row["backup_codes_saved_at"] is not None,
        )

    @property
    def mfa_enabled(self) -> bool:
        """A second factor that signs in: the authenticator app or a passkey (backup codes only recover)."""
        return self.has_totp or self.passkeys > 0

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"

    @property
    def mfa_required(self) -> bool:
        """The org policy asks for MFA on this member's role."""
        p = self.policy
        return p.require_admins if self.is_admin else p.require_agents

    @property
    def enrolment_deadline(self) -> datetime | None:
        """Until when a member under the policy may still sign in without MFA (None: no grace period).

        The grace period runs from when the policy started to require MFA of the role (or from the member
        joining, if later): saving the policy again does not restart it."""
        p = self.policy
        since = p.admins_since if self.is_admin else p.agents_since
        if not self.mfa_required or p.grace_days <= 0 or since is None:
            return None
        return max(since, self.user.created_at) + timedelta(days=p.grace_days)

    @property
    def must_enrol(self) -> bool:
        if not self.mfa_required or self.mfa_enabled:
            return False
        deadline = self.enrolment_deadline
        return deadline is None or deadline <= now()

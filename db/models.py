"""The tables. Timestamps are aware UTC datetimes (`db.clock.now()`) on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from db.clock import now

ROLES = ("admin", "agent")


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    role: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=now)
    last_sign_in_at: datetime | None = None
    # The member said they saved the backup codes shown last (None: not since they were made).
    backup_codes_saved_at: datetime | None = None
    # The 2FA check-up at sign-in was answered (asked again only after MFA is turned on anew).
    mfa_checkup_at: datetime | None = None
    # The member's choice in Settings (None: follow the browser's Accept-Language; the zone: UTC).
    locale: str | None = Field(default=None, max_length=8)
    time_zone: str | None = Field(default=None, max_length=64)


class AuthSession(SQLModel, table=True):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is stored, so deleting
    the row revokes a cookie that is still validly signed."""

    __tablename__ = "auth_session"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=now)
    verified_at: datetime = Field(default_factory=now)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=255)
    # Password accepted, second step not given yet: not signed in, but ended with the member's sessions.
    pending: bool = Field(default=False)
    # Coarse: written only when the cookie's own last-activity stamp is refreshed (at most once a minute).
    last_seen_at: datetime = Field(default_factory=now)


class TotpDevice(SQLModel, table=True):
    __tablename__ = "totp_device"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", unique=True, ondelete="CASCADE")
    secret_encrypted: str = Field(max_length=512)
    confirmed_at: datetime = Field(default_factory=now)
    last_used_step: int | None = None


class RecoveryCode(SQLModel, table=True):
    __tablename__ = "recovery_code"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    lookup: str = Field(max_length=16, index=True)
    code_hash: str = Field(max_length=255)
    created_at: datetime = Field(default_factory=now)
    used_at: datetime | None = None


class Throttle(SQLModel, table=True):
    """Consecutive failures under one key ("mfa:<user id>", "pw:<email digest>", "ip:<address>")."""

    key: str = Field(primary_key=True, max_length=80)
    failures: int = 0
    locked_until: datetime | None = None
    updated_at: datetime = Field(default_factory=now)


class SecurityEvent(SQLModel, table=True):
    """Append-only, but for two things: an anonymous failure repeated in its window adds to `repeats` of
    the window's row (db/events.py), and rows older than EVENT_RETENTION_DAYS are deleted."""

    __tablename__ = "security_event"
    # The admin chart counts one kind per day: (kind, at) answers it from the index alone. A member's page
    # walks (actor_id, id) and (target_id, id) newest first (db/event_pages.py); PostgreSQL needs the id in
    # the index for that, SQLite has it anyway (the rowid).
    __table_args__ = (
        Index("ix_security_event_kind_at", "kind", "at"),
        Index("ix_security_event_actor_id_id", "actor_id", "id"),
        Index("ix_security_event_target_id_id", "target_id", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=now, index=True)
    kind: str = Field(max_length=40, index=True)
    outcome: str = Field(default="success", max_length=16)
    actor_id: int | None = Field(default=None, index=True)
    actor_label: str = Field(default="", max_length=254)
    target_id: int | None = Field(default=None, index=True)
    target_label: str = Field(default="", max_length=254)
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=255)
    detail: str = Field(default="", max_length=255)
    repeats: int = Field(default=0, sa_column_kwargs={"server_default": "0"})  # more like it, in its window


class Notice(SQLModel, table=True):
    """An in-app message shown to a member at their next visit (MFA changes, recovery, failed attempts)."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    at: datetime = Field(default_factory=now)
    text: str = Field(max_length=500)
    read_at: datetime | None = None
    mailed_at: datetime | None = None  # set only once the relay accepted the message
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Due for (another) attempt from then on: a worker's lease while it sends, the backoff after a failure.
    next_attempt_at: datetime | None = None


class OrgPolicy(SQLModel, table=True):
    __tablename__ = "org_policy"
    id: int | None = Field(default=None, primary_key=True)
    require_admins: bool = False
    require_agents: bool = False
    grace_days: int = 0
    updated_at: datetime = Field(default_factory=now)
    # When the policy began to require MFA of each role: the grace period runs from then, not from a save.
    admins_since: datetime | None = None
    agents_since: datetime | None = None
    # "Remember this browser" at the second step, per role, for at most `remember_days` (off by default).
    remember_admins: bool = False
    remember_agents: bool = False
    remember_days: int = 30


class OneTimeToken(SQLModel, table=True):
    """Set-up and set-password links: only the SHA-256 of the token is kept."""

    __tablename__ = "one_time_token"
    id: int | None = Field(default=None, primary_key=True)
    purpose: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", ondelete="CASCADE")
    expires_at: datetime
    used_at: datetime | None = None


class Webhook(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=500)
    secret_encrypted: str = Field(max_length=512)
    enabled: bool = True
    created_at: datetime = Field(default_factory=now)


class Billing(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    plan: str = Field(default="starter", max_length=16)
    billing_email: str = Field(default="", max_length=254)
    updated_at: datetime = Field(default_factory=now)


class KeyHolder(SQLModel, table=True):
    """What one app process has loaded from the encryption keys, refreshed by its background loop, so a key
    rotation can wait for every live process before the next phase (db/keys.py)."""

    __tablename__ = "key_holder"
    holder: str = Field(primary_key=True, max_length=128)  # host:pid:instance
    fingerprints: str = Field(max_length=512)  # comma-separated, the encrypting key first
    sealed_at: datetime | None = None  # last seal under the encrypting key above
    old_sealed_at: datetime | None = None  # last seal under any key that encrypted before it
    report_every: float = 2.0
    seen_at: datetime = Field(default_factory=now)
    stopped: bool = False


class PasskeyCredential(SQLModel, table=True):
    """A member's WebAuthn credential. `credential_id` is unique across members: an authenticator's id names
    one account. `user_handle` is the random id the authenticator keeps for the member (no PII in it)."""

    __tablename__ = "passkey_credential"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    credential_id: str = Field(max_length=1400, unique=True)  # base64url; WebAuthn allows up to 1023 bytes
    user_handle: str = Field(max_length=128)  # base64url of the WebAuthn user.id
    public_key: bytes
    sign_count: int = 0
    transports: str = Field(default="", max_length=120)  # comma-separated AuthenticatorTransport values
    aaguid: str = Field(default="", max_length=36)
    name: str = Field(max_length=64)
    backed_up: bool = False
    created_at: datetime = Field(default_factory=now)
    last_used_at: datetime | None = None


class WebAuthnChallenge(SQLModel, table=True):
    """A ceremony's challenge, found by the SHA-256 of a handle that only the browser's cookie session holds,
    so it is bound to that session; taken once by a conditional UPDATE, so two processes can't both use it."""

    __tablename__ = "webauthn_challenge"
    id: int | None = Field(default=None, primary_key=True)
    handle_hash: str = Field(max_length=64, unique=True)
    challenge: str = Field(max_length=128)  # base64url; sent to the browser, so not a secret
    purpose: str = Field(max_length=16)  # register | second_step | step_up | sign_in
    user_id: int | None = Field(default=None, foreign_key="user.id", ondelete="CASCADE")
    user_handle: str = Field(default="", max_length=128)  # for register: the user.id the options named
    expires_at: datetime = Field(index=True)
    used_at: datetime | None = None


class RememberedBrowser(SQLModel, table=True):
    """A browser that may skip the second step (never the password, never "Confirm it's you") until it
    expires. Its long-lived cookie holds a random token; only the token's SHA-256 is kept (db/devices.py)."""

    __tablename__ = "remembered_browser"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=now)
    expires_at: datetime
    last_used_at: datetime | None = None
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=255)

"""The ceiling sign-in's storage: its own `bare_*` tables, its statements, its configuration and its seeding.

Statements are SQLAlchemy `text()` built once at import (the same SQL on SQLite and PostgreSQL), run on an
engine from `db.engine.make_engine`, so the ceiling gets the app's SQLite pragmas and PostgreSQL pool. The
tables are prefixed so they never meet the app's in a shared PostgreSQL database; `prepare()` drops,
creates and seeds them before the server starts (bench/run.py), so workers starting together never race
over the schema and every run starts from the same rows.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from sqlalchemy import BigInteger, Boolean, Column, Engine, ForeignKey, Integer, MetaData, String, Table, insert, text

from db.engine import make_engine

META = MetaData()
USERS = Table(
    "bare_users",
    META,
    Column("id", Integer, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
)
TOTP = Table(
    "bare_totp",
    META,
    Column("user_id", ForeignKey("bare_users.id"), primary_key=True),
    Column("secret_encrypted", String(200), nullable=False),
    Column("last_step", BigInteger),
)
SESSIONS = Table(
    "bare_sessions",
    META,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", ForeignKey("bare_users.id"), nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)
THROTTLE = Table(
    "bare_throttle",
    META,
    Column("name", String(300), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)
EVENTS = Table(
    "bare_events",
    META,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("bare_users.id"), nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("ip", String(45), nullable=False),
    Column("at", BigInteger, nullable=False),
)

COUNT = text(
    "INSERT INTO bare_throttle (name, failures, updated_at) VALUES (:name, 1, :now) ON CONFLICT (name) DO UPDATE "
    "SET failures = CASE WHEN bare_throttle.updated_at < :stale THEN 1 ELSE bare_throttle.failures + 1 END, "
    "updated_at = :now RETURNING failures"
)
CLEAR = text("DELETE FROM bare_throttle WHERE name = :name")
USER = text("SELECT id, password_hash FROM bare_users WHERE email = :email")
OPEN = text(
    "INSERT INTO bare_sessions (token_hash, user_id, verified, created_at) VALUES (:digest, :user_id, FALSE, :now)"
)
IS_PENDING = text("SELECT 1 FROM bare_sessions WHERE token_hash = :digest AND NOT verified AND created_at > :since")
SECOND_STEP = text(
    "SELECT s.user_id, t.secret_encrypted FROM bare_sessions s JOIN bare_totp t ON t.user_id = s.user_id "
    "WHERE s.token_hash = :digest AND NOT s.verified AND s.created_at > :since"
)
USE_STEP = text(
    "UPDATE bare_totp SET last_step = :step WHERE user_id = :user_id AND (last_step IS NULL OR last_step < :step)"
)
ROTATE = text("UPDATE bare_sessions SET token_hash = :new, verified = TRUE, created_at = :now WHERE token_hash = :old")
LOG = text("INSERT INTO bare_events (user_id, kind, ip, at) VALUES (:user_id, 'signed_in', :ip, :now)")


@dataclass(frozen=True)
class Ceiling:
    engine: Engine
    hasher: PasswordHasher
    fernet: Fernet
    absent: str  # a hash to check unknown emails against, so they cost what a member's password costs


def ceiling_from(env: Mapping[str, str]) -> Ceiling:
    """BARE_DATABASE_URL, BARE_TOTP_KEY (Fernet) and the app's ARGON2_TIME_COST / ARGON2_MEMORY_KIB."""
    hasher = PasswordHasher(
        time_cost=int(env["ARGON2_TIME_COST"]), memory_cost=int(env["ARGON2_MEMORY_KIB"]), parallelism=1
    )
    engine = make_engine(env["BARE_DATABASE_URL"])
    return Ceiling(engine, hasher, Fernet(env["BARE_TOTP_KEY"]), hasher.hash(secrets.token_urlsafe()))


def prepare(env: Mapping[str, str], members: Path) -> None:
    """(Re)create the bare_ tables and seed them from bench/run.py's members file: one hash per password."""
    ceiling = ceiling_from(env)
    rows = json.loads(members.read_text())
    hashes = {password: ceiling.hasher.hash(password) for password in {m["password"] for m in rows}}
    META.drop_all(ceiling.engine)
    META.create_all(ceiling.engine)
    with ceiling.engine.begin() as conn:
        conn.execute(
            insert(USERS),
            [{"id": i, "email": m["email"], "password_hash": hashes[m["password"]]} for i, m in enumerate(rows, 1)],
        )
        conn.execute(
            insert(TOTP),
            [
                {"user_id": i, "secret_encrypted": ceiling.fernet.encrypt(m["secret"].encode()).decode()}
                for i, m in enumerate(rows, 1)
            ],
        )
    ceiling.engine.dispose()

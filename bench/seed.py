"""Seeding members with MFA on, fast: the rows a real enrolment leaves, written directly through the models.

A real enrolment costs one argon2 hash of the password (0.2 s) and ten of backup codes; for 2,000 members
that is minutes. So one password hash with the production parameters, and one backup-code hash, are
computed once and reused for every member. Each member still gets their own TOTP secret, encrypted with
the keyring the server will use (same DATA_DIR), so every code the load generator computes is checked for
real.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass

import pyotp
from itsdangerous import TimestampSigner
from sqlalchemy import Engine, insert
from sqlmodel import select

from db import codes, migrate, signins
from db.clock import now
from db.engine import open_session
from db.models import RecoveryCode, TotpDevice, User
from web import guards
from web.config import Settings
from web.cookies import PLAIN_NAME

PASSWORD = "bench correct horse battery staple"
DOMAIN = "bench.example"


@dataclass(frozen=True)
class Seeded:
    id: int
    email: str
    secret: str


def seed(engine: Engine, settings: Settings, count: int) -> tuple[list[Seeded], float]:
    """`count` agents with a confirmed authenticator and ten unused backup codes; returns them and the seconds."""
    started = time.perf_counter()
    migrate.upgrade(engine)
    password_hash = settings.password_hasher.hash(PASSWORD)  # once, with the production parameters
    code = codes.normalize(codes.generate(1)[0]) or ""
    code_hash = codes.hash_code(code)  # once as well: the Settings page only counts these rows
    secrets = [pyotp.random_base32() for _ in range(count)]
    emails = [f"member{i:04d}@{DOMAIN}" for i in range(count)]
    with open_session(engine) as session:
        session.add_all([User(email=e, role="agent", password_hash=password_hash) for e in emails])
        session.commit()
        ids = dict(session.exec(select(User.email, User.id).where(User.email.in_(emails))).all())  # type: ignore[attr-defined]
        session.add_all(
            [
                TotpDevice(user_id=ids[e], secret_encrypted=settings.keyring.encrypt(s))
                for e, s in zip(emails, secrets, strict=True)
            ]
        )
        at = now()
        rows = [
            {"user_id": ids[e], "lookup": f"{i:06d}{n:02d}", "code_hash": code_hash, "created_at": at}
            for i, e in enumerate(emails)
            for n in range(codes.COUNT)
        ]
        session.execute(insert(RecoveryCode), rows)  # bulk: 20,000 model instances would take seconds
        session.commit()
    members = [Seeded(ids[e], e, s) for e, s in zip(emails, secrets, strict=True)]
    return members, time.perf_counter() - started


def cookie_value(secret_key: str, values: dict[str, object]) -> str:
    """A session cookie exactly as web/cookies.py signs it (itsdangerous, salt "chat360.session")."""
    signer = TimestampSigner(secret_key, salt="chat360.session")
    payload = base64.b64encode(json.dumps(values, separators=(",", ":")).encode())
    return signer.sign(payload).decode()


def mint_sessions(engine: Engine, settings: Settings, members: list[Seeded]) -> list[str]:
    """Signed-in sessions made in the database (db.signins.start), as Cookie header values.

    For the step-up pool only: a TOTP code can be used once per member per 30 s, so step-up needs many
    signed-in members, and signing 1,500 of them in over HTTP would cost five minutes of argon2.
    """
    now = int(time.time())
    cookies = []
    with open_session(engine) as session:
        for member in members:
            user = session.get(User, member.id)
            assert user is not None
            token = signins.start(session, user=user, ip="127.0.0.1", user_agent="bench")
            values = {guards.SID: token, guards.SINCE: now, guards.SEEN: now}
            cookies.append(f"{PLAIN_NAME}=" + cookie_value(settings.secret_key, values))
        session.commit()
    return cookies

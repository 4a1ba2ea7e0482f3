"""Members with TOTP on, made through the product's own services (the same calls as a real enrolment).

Each member costs one password hash (the running config's argon2 parameters) and ten backup-code hashes,
so a few hundred take a few seconds. Their addresses carry a per-run tag, so seeding never collides with an
earlier run's members in a reused PostgreSQL database.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pyotp
from sqlalchemy import Engine, update
from sqlmodel import Session, col

from db import mfa, migrate, users
from db.clock import now
from db.engine import open_session
from db.events import OPERATOR
from db.factors import totp
from db.models import Notice, User
from web.app import hasher_for, keyring_for
from web.config import Settings

PASSWORD = "bench correct horse battery staple"


def seed(engine: Engine, settings: Settings, count: int) -> list[dict[str, str]]:
    """`count` agents with a confirmed authenticator; returns their email, password and TOTP secret."""
    migrate.upgrade(engine)
    tag = secrets.token_hex(3)
    members = []
    with open_session(engine) as session:
        for i in range(count):
            user = users.create_user(
                session,
                email=f"m{i:04d}.{tag}@bench.example",
                role="agent",
                password=PASSWORD,
                hasher=hasher_for(settings),
                actor=OPERATOR,
            )
            secret = _enrol(session, settings, user)
            members.append({"email": user.email, "password": PASSWORD, "secret": secret})
        # Seeding's own notices ("authenticator turned on") count as mailed: otherwise the server mails
        # hundreds of them in its first seconds, inside whichever measurement runs first.
        session.execute(update(Notice).where(col(Notice.mailed_at).is_(None)).values(mailed_at=now()))
        session.commit()
    return members


def _enrol(session: Session, settings: Settings, user: User) -> str:
    """Enrol as the Settings page does; the code is from two steps ago so the current one is still unused."""
    sealed, secret = totp.begin_enrolment(keyring_for(settings), user_id=user.id or 0)
    at = time.time() - 90
    code = pyotp.TOTP(secret).at(at)
    mfa.confirm_totp(
        session,
        user=user,
        sealed=sealed,
        code=code,
        keyring=keyring_for(settings),
        ttl=settings.enrolment_ttl,
        actor=OPERATOR,
        at=at,
    )
    session.commit()
    return secret


def save(members: list[dict[str, str]], path: Path) -> None:
    path.write_text(json.dumps(members))

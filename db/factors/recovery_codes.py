"""Backup (recovery) codes: generation, normalisation and hashing.

16 symbols from a 30-symbol alphabet without look-alikes (no 0/O, 1/I/L, U) is 78 bits per code, above
NIST's 64 for saved recovery codes. Below 112 bits NIST wants a salted password hash, so codes are stored as
argon2id. A short unkeyed SHA-256 prefix picks the row, so checking a code costs one argon2 verification;
32 bits of a 78-bit value leave nothing feasible to brute-force offline.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from db.clock import now
from db.models import RecoveryCode
from db.sql import affected

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 16
GROUP = 4
COUNT = 10
MAX_INPUT = 64
_SEPARATORS = re.compile(r"[ \t\r\n\-]")

# Codes are random and long, so stretching buys little; keep each check cheap (about 3 ms).
_hasher = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


def generate(count: int = COUNT) -> list[str]:
    """`count` distinct codes, formatted in groups of four for reading aloud and typing."""
    codes: set[str] = set()
    while len(codes) < count:
        codes.add("".join(secrets.choice(ALPHABET) for _ in range(LENGTH)))
    return [format_code(c) for c in sorted(codes)]


def format_code(code: str) -> str:
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def normalize(raw: str) -> str | None:
    """The canonical form of a typed code (any case, spaces or dashes anywhere), or None if it can't be one."""
    if len(raw) > MAX_INPUT or not raw.isascii():
        return None  # upper() maps some non-ASCII letters to ASCII ones ('ſ' -> 'S'): refuse them first
    code = _SEPARATORS.sub("", raw).upper()
    if len(code) == LENGTH and all(c in ALPHABET for c in code):
        return code
    return None


def lookup_of(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:8]


def hash_code(code: str) -> str:
    return _hasher.hash(code)


def matches(code_hash: str, code: str) -> bool:
    try:
        return _hasher.verify(code_hash, code)
    except (VerificationError, InvalidHashError):
        return False


# ---- the member's set of codes


def replace(session: Session, *, user_id: int) -> list[str]:
    """A new set of codes (every earlier one stops working); returns them for showing once. Caller commits."""
    remove(session, user_id=user_id)
    fresh = generate()
    for shown in fresh:
        code = normalize(shown) or ""
        session.add(RecoveryCode(user_id=user_id, lookup=lookup_of(code), code_hash=hash_code(code)))
    return fresh


def verify(session: Session, *, user_id: int, raw: str) -> bool:
    """Use up a code: one argon2 check for the row its lookup picks, then one conditional UPDATE."""
    code = normalize(raw)
    if code is None:
        return False
    rows = session.exec(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.lookup == lookup_of(code),
            col(RecoveryCode.used_at).is_(None),
        )
    ).all()
    for row in rows:
        if matches(row.code_hash, code):
            used = session.execute(
                update(RecoveryCode)
                .where(col(RecoveryCode.id) == row.id, col(RecoveryCode.used_at).is_(None))
                .values(used_at=now())
            )
            return affected(used) == 1
    return False


def left(session: Session, *, user_id: int) -> int:
    query = select(func.count()).where(RecoveryCode.user_id == user_id, col(RecoveryCode.used_at).is_(None))
    return session.exec(query.select_from(RecoveryCode)).one()


def remove(session: Session, *, user_id: int) -> None:
    session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))

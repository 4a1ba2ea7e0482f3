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

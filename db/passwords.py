"""Password hashing (argon2id) and the password rules.

The default cost is the argon2id configuration of OWASP's Password Storage Cheat Sheet (19 MiB, 2 passes,
1 lane): about 20 ms of one core. Hashing runs off the event loop behind a
bounded limiter (see `web.offload`); the cost comes from settings so the test suite can use a cheap one.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from db.i18n import _

MIN_LENGTH = 15  # NIST SP 800-63B-4 §3.1.1.2: 15 when a password may be the only factor
MAX_LENGTH = 128
# A short blocklist of the passwords attackers try first (NIST asks for a check against such a list).
COMMON = frozenset(
    {
        "passwordpassword",
        "password1234567",
        "123456789012345",
        "qwertyuiopasdfgh",
        "iloveyouiloveyou",
        "aaaaaaaaaaaaaaa",
        "chat360chat360chat360",
    }
)


def make_hasher(*, time_cost: int = 2, memory_kib: int = 19456) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def password_problem(password: str) -> str | None:
    """A message saying what is wrong with a new password, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return _("Use at least %(num)d characters.", num=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return _("Use at most %(num)d characters.", num=MAX_LENGTH)
    if password.lower() in COMMON or len(set(password)) < 4:
        return _("This password is too easy to guess. Try a few unrelated words.")
    return None


def verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False

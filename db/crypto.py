"""Authenticated encryption of secrets that must be read back (TOTP seeds, webhook signing secrets).

The keys live outside the database (`MFA_ENCRYPTION_KEYS` or a 0600 file under the data directory); the
first key encrypts, every key decrypts. A key is rotated in phases (see db/keys.py), so every process can
open what any other process seals at every moment of a rotation.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["Keyring", "InvalidToken", "new_key", "fingerprint"]


def new_key() -> str:
    """A fresh 256-bit Fernet key (AES-128-CBC + HMAC-SHA256, as url-safe base64)."""
    return Fernet.generate_key().decode()


def fingerprint(key: str) -> str:
    """A public name for a key, safe to store beside the data: a truncated hash of 256 random bits."""
    return hashlib.sha256(b"chat360 key fingerprint\0" + key.encode()).hexdigest()[:16]


class Keyring:
    """Encrypts with the first key and decrypts with any of them.

    It remembers when it last sealed something under its encrypting key (and under an earlier one, after a
    reload), so the process can report whether a key that is about to be retired may still be needed for a
    pending enrolment sealed a moment ago.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self.sealed_at: float | None = None
        self.old_sealed_at: float | None = None
        self._load(keys)

    def _load(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        previous = getattr(self, "keys", None)
        if previous and previous[0] != keys[0] and self.sealed_at is not None:
            self.old_sealed_at = max(self.old_sealed_at or 0.0, self.sealed_at)
            self.sealed_at = None
        fernet = MultiFernet([Fernet(k) for k in keys])
        self.keys, self._fernet = tuple(keys), fernet

    def refresh(self, *, force: bool = False) -> bool:
        """Pick up a changed key set; a fixed keyring never changes. True when the keys changed."""
        return False

    def fingerprints(self) -> tuple[str, ...]:
        self.refresh()
        return tuple(fingerprint(k) for k in self.keys)

    def encrypt(self, plaintext: str) -> str:
        self.refresh()
        self.sealed_at = time.time()
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str, *, ttl: int | None = None) -> str:
        """Raises InvalidToken for a foreign key, tampering or (with `ttl`) an expired token."""
        self.refresh()
        try:
            return self._open(token, ttl)
        except InvalidToken:
            if not self.refresh(force=True):
                raise
            return self._open(token, ttl)  # sealed by a process that saw a new key a moment before us

    def _open(self, token: str, ttl: int | None) -> str:
        if ttl is None:
            return self._fernet.decrypt(token.encode()).decode()
        return self._fernet.decrypt(token.encode(), ttl=ttl).decode()

    def rotate(self, token: str) -> str:
        """The same plaintext under the first key."""
        self.refresh()
        return self._fernet.rotate(token.encode()).decode()

"""Authenticated encryption of secrets that must be read back (TOTP seeds, webhook signing secrets).

The keys live outside the database (`MFA_ENCRYPTION_KEYS` or a 0600 file under the data directory); the
first key encrypts, every key decrypts, so a new key can be put in front before `keys rotate` re-encrypts.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["Keyring", "InvalidToken", "new_key"]


def new_key() -> str:
    """A fresh 256-bit Fernet key (AES-128-CBC + HMAC-SHA256, as url-safe base64)."""
    return Fernet.generate_key().decode()


class Keyring:
    """Encrypts with the first key and decrypts with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self.keys = tuple(keys)
        self._fernet = MultiFernet([Fernet(k) for k in self.keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str, *, ttl: int | None = None) -> str:
        """Raises InvalidToken for a foreign key, tampering or (with `ttl`) an expired token."""
        if ttl is None:
            return self._fernet.decrypt(token.encode()).decode()
        return self._fernet.decrypt(token.encode(), ttl=ttl).decode()

    def rotate(self, token: str) -> str:
        """The same plaintext under the first key."""
        return self._fernet.rotate(token.encode()).decode()

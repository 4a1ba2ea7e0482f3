"""Settings, read once from the environment. Secrets that aren't given are generated once into the data
directory with mode 0600, so a fresh clone runs with no set-up and keeps its keys across restarts."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher

from db.crypto import Keyring, new_key
from db.passwords import make_hasher


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    secret_key: str
    mfa_keys: tuple[str, ...]
    app_name: str = "Chat360"
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # where members reach the app (passkeys' RP ID and origin); empty: http://localhost:<port>
    reauth_window: int = 900  # seconds a second-factor check stays fresh for sensitive settings
    idle_timeout: int = 3600  # NIST SP 800-63B-4 AAL2: re-authenticate after 1 h idle ...
    absolute_timeout: int = 86400  # ... and after 24 h in any case
    enrolment_ttl: int = 600  # a pending authenticator secret dies after 10 minutes
    second_step_ttl: int = 300  # time between the password and the second step
    max_body: int = 16 * 1024
    smtp_url: str | None = None
    outbox_interval: float = 2.0  # seconds between deliveries of queued security notices
    debug: bool = False
    argon2_time_cost: int = 5
    argon2_memory_kib: int = 65536
    hash_concurrency: int = 2  # password hashes at once: one per core
    # The clock TOTP codes are checked against; tests pass their own to step through time windows.
    totp_clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    password_hasher: PasswordHasher = field(init=False, repr=False, compare=False)
    keyring: Keyring = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if ":" in self.app_name or not self.app_name.strip():
            # Key Uri Format: the issuer prefixes the label with a colon, so it may not hold one itself.
            raise ValueError("APP_NAME must be non-empty and may not contain ':'")
        hasher = make_hasher(time_cost=self.argon2_time_cost, memory_kib=self.argon2_memory_kib)
        object.__setattr__(self, "password_hasher", hasher)
        object.__setattr__(self, "keyring", Keyring(self.mfa_keys))
        if not self.public_url:
            object.__setattr__(self, "public_url", f"http://localhost:{self.port}")

    @property
    def outbox(self) -> Path:
        return self.data_dir / "outbox.txt"


def _secret_file(path: Path, make: str) -> str:
    """The secret stored at `path`, created with mode 0600 on first use.

    Written to a private temporary file and linked into place, so processes starting together (workers,
    an operator command) all end up with the same complete secret.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won; use its secret
        finally:
            temporary.unlink()
    return path.read_text().strip()


def keys_file(data_dir: Path) -> Path:
    return data_dir / "mfa_encryption_keys"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    data_dir = Path(env.get("DATA_DIR", "data")).resolve()
    secret_key = env.get("SECRET_KEY") or _secret_file(data_dir / "secret_key", secrets.token_urlsafe(48))
    keys = env.get("MFA_ENCRYPTION_KEYS") or _secret_file(keys_file(data_dir), new_key())
    return Settings(
        data_dir=data_dir,
        database_url=env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'chat360.db'}",
        secret_key=secret_key,
        mfa_keys=tuple(k.strip() for k in keys.replace("\n", ",").split(",") if k.strip()),
        app_name=env.get("APP_NAME", "Chat360"),
        host=env.get("HOST", "127.0.0.1"),
        port=int(env.get("PORT", "8000")),
        public_url=env.get("PUBLIC_URL", ""),
        reauth_window=int(env.get("REAUTH_WINDOW", "900")),
        idle_timeout=int(env.get("IDLE_TIMEOUT", "3600")),
        absolute_timeout=int(env.get("ABSOLUTE_TIMEOUT", "86400")),
        smtp_url=env.get("SMTP_URL") or None,
        debug=env.get("DEBUG", "") == "1",
        argon2_time_cost=int(env.get("ARGON2_TIME_COST", "5")),
        argon2_memory_kib=int(env.get("ARGON2_MEMORY_KIB", "65536")),
        hash_concurrency=int(env.get("HASH_CONCURRENCY", str(os.cpu_count() or 1))),
    )

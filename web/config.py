"""Settings, read once through Starlette's `Config` (the environment, then `.env` when present). Each
setting's default is written once, on the dataclass field; its environment name is the field's name in
capitals. Secrets that aren't given are generated once into the data directory with mode 0600, so a fresh
clone runs with no set-up and keeps its keys across restarts."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from starlette.config import Config
from starlette.datastructures import Secret

from db import outbound
from db.crypto import new_key
from db.mail import parse_relay
from web import urls

# Fields computed from others or holding secrets: read by hand below.
_SPECIAL = {
    "data_dir",
    "database_url",
    "secret_key",
    "mfa_keys",
    "public_url",
    "smtp_ca_file",
    "totp_clock",
    "resolver",
    "keys_path",
}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    secret_key: str = field(repr=False)
    mfa_keys: tuple[str, ...] = field(repr=False)
    app_name: str = "Chat360"
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # PUBLIC_URL, the origin in every absolute link; default http://localhost:<port>
    reauth_window: int = 900  # seconds a second-factor check stays fresh for sensitive settings
    idle_timeout: int = 3600  # NIST SP 800-63B-4 AAL2: re-authenticate after 1 h idle ...
    absolute_timeout: int = 86400  # ... and after 24 h in any case
    idle_warning: int = 120  # IDLE_WARNING: seconds before the idle timeout that "Stay signed in" is offered
    enrolment_ttl: int = 600  # a pending authenticator secret dies after 10 minutes
    second_step_ttl: int = 300  # time between the password and the second step
    checkup_days: int = 28  # CHECKUP_DAYS: the 2FA check-up at sign-in this long after MFA was turned on; 0: never
    max_body: int = 16 * 1024
    smtp_url: str | None = None
    smtp_ca_file: Path | None = None  # a private relay's CA, trusted besides the system's
    outbox_interval: float = 2.0  # seconds between deliveries of queued security notices
    event_retention_days: int = 400  # security-log entries older than this are deleted (hourly)
    debug: bool = False
    # OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1 (its first listed configuration).
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    web_concurrency: int = 1  # worker processes (uvicorn reads the same WEB_CONCURRENCY)
    hash_concurrency: int = 0  # password hashes at once per worker; 0: the worker's share of the cores
    # The clock TOTP codes are checked against; tests pass their own to step through time windows.
    keys_path: Path | None = None  # the managed key file, re-read when it changes; None: keys fixed (env)
    totp_clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)
    # Resolves webhook host names (db/outbound.py); tests pass their own, as there is no DNS in the sandbox.
    resolver: outbound.Resolver = field(default=outbound.system_resolver, repr=False, compare=False)

    def __post_init__(self) -> None:
        if ":" in self.app_name or not self.app_name.strip():
            # Key Uri Format: the issuer prefixes the label with a colon, so it may not hold one itself.
            raise ValueError("APP_NAME must be non-empty and may not contain ':'")
        if self.smtp_url:
            parse_relay(self.smtp_url)  # a scheme we don't know stops start-up with a clear message
        object.__setattr__(self, "public_url", urls.public_url(self.public_url, port=self.port))  # validated once

    @property
    def outbox(self) -> Path:
        return self.data_dir / "outbox.txt"

    @property
    def hashes_at_once(self) -> int:
        """argon2 releases the GIL: one hash per core runs truly in parallel, more would only queue."""
        return self.hash_concurrency or max(1, (os.cpu_count() or 1) // max(1, self.web_concurrency))


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


def private_dir(path: Path) -> Path:
    """The data directory, 0700: it holds the keys, the SQLite database and the outbox of mailed links."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_mode & 0o077 and info.st_uid == os.getuid():
        path.chmod(0o700)
    return path


def keys_file(data_dir: Path) -> Path:
    return data_dir / "mfa_encryption_keys"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env_file = Path(".env")
    config = Config(env_file if env is None and env_file.exists() else None, environ=os.environ if env is None else env)
    values: dict[str, Any] = {}
    for f in fields(Settings):
        if f.name not in _SPECIAL:
            cast = type(f.default) if f.default is not None else str
            values[f.name] = config(f.name.upper(), cast=cast, default=f.default)
    data_dir = private_dir(Path(config("DATA_DIR", default="data")).resolve())
    secret_key = config("SECRET_KEY", cast=Secret, default="")
    keys = config("MFA_ENCRYPTION_KEYS", cast=Secret, default="")
    return Settings(
        data_dir=data_dir,
        database_url=config("DATABASE_URL", default="") or f"sqlite:///{data_dir / 'chat360.db'}",
        secret_key=str(secret_key) or _secret_file(data_dir / "secret_key", secrets.token_urlsafe(48)),
        mfa_keys=_keys(str(keys) or _secret_file(keys_file(data_dir), new_key())),
        keys_path=None if str(keys) else keys_file(data_dir),  # a key file is re-read when it changes
        public_url=config("PUBLIC_URL", default="").rstrip("/"),
        smtp_ca_file=Path(ca) if (ca := config("SMTP_CA_FILE", default="")) else None,
        **values,
    )


def _keys(text: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in text.replace("\n", ",").split(",") if k.strip())

"""The managed key file (`DATA_DIR/mfa_encryption_keys`, mode 0600, one key a line, the first encrypts) and a
keyring that follows it, so every worker on the host picks up a rotation phase without a restart."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from db.crypto import Keyring

log = logging.getLogger("chat360.keys")
CHECK_EVERY = 1.0  # seconds between two looks at the file: a stat, not a read, and not on every call


def read_keys(path: Path) -> tuple[str, ...]:
    return tuple(line.strip() for line in path.read_text().splitlines() if line.strip())


def write_keys(path: Path, keys: Sequence[str]) -> None:
    """Replace the file in one step (a private temporary file renamed over it): a reader sees the old set
    or the new one, never half a file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(keys) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def _signature(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, st.st_size


class FileKeyring(Keyring):
    """A keyring re-read when its file changes (inode, mtime or size), looked at no more than once a second."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._signature = _signature(path)  # before reading: a change in between is seen at the next look
        self._checked = time.monotonic()
        super().__init__(read_keys(path))

    def refresh(self, *, force: bool = False) -> bool:
        if not force and time.monotonic() - self._checked < CHECK_EVERY:
            return False
        with self._lock:
            self._checked = time.monotonic()
            try:
                signature = _signature(self.path)
                if signature == self._signature:
                    return False
                keys = read_keys(self.path)
                self._load(keys)
            except (OSError, ValueError) as exc:
                # A missing, empty or broken file must not take the keys this process already holds.
                log.error("key file %s unreadable (%s); keeping the keys loaded before", self.path, exc)
                return False
            self._signature = signature
            log.info("key file %s changed; %d key(s) loaded", self.path, len(keys))
            return True

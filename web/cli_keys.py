"""`python -m web keys …`: key rotation in phases (db/keys.py). With the managed key file the commands change
the file and every process on the host follows it; with MFA_ENCRYPTION_KEYS they check what the running
processes report and say what the operator changes next. A phase that would lose a secret is refused."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from sqlmodel import Session

from db import keys
from db.crypto import InvalidToken, Keyring, fingerprint, new_key
from db.keyfile import read_keys, write_keys
from db.keyholders import Holder
from web.config import Settings

ENV_NOTE = "MFA_ENCRYPTION_KEYS is set, so this command can't change the keys"


class Refused(Exception):
    """Unsafe now: a message for the operator, and exit status 1."""


def current(settings: Settings) -> tuple[str, ...]:
    return read_keys(settings.keys_path) if settings.keys_path else settings.mfa_keys


def names(found: Sequence[Holder]) -> str:
    return ", ".join(h.name for h in found)


def wait_for(session: Session, check: Callable[[], list[Holder]], seconds: float) -> list[Holder]:
    """Poll the processes' reports until none is left behind, or the time is up; those left behind."""
    deadline = time.monotonic() + seconds
    while (behind := check()) and time.monotonic() < deadline:
        session.rollback()  # end the read transaction, or PostgreSQL keeps showing the same snapshot
        time.sleep(0.25)
    return behind


def add(settings: Settings, session: Session) -> str:
    """Phase 1: a new key, decrypt-only, at the end of the set."""
    key = new_key()
    if settings.keys_path is None:
        print(f"{ENV_NOTE}. New key (fingerprint {fingerprint(key)}):\n{key}")
        print("Next: append it to MFA_ENCRYPTION_KEYS (last) on every host, restart, then `keys promote`.")
        return key
    write_keys(settings.keys_path, (*current(settings), key))
    print(f"Added key {fingerprint(key)} for decrypting only; every process on this host picks it up.")
    return key


def promote(settings: Settings, session: Session, *, wait: float) -> str:
    """Phase 2: the newest key encrypts, once every live process can open what it seals."""
    present = current(settings)
    if len(present) < 2:
        raise Refused("only one key is configured: run `keys add` first")
    newest = present[-1]
    if behind := wait_for(session, lambda: keys.live_without(session, newest), wait):
        raise Refused(f"these processes have not loaded key {fingerprint(newest)} yet: {names(behind)}")
    if settings.keys_path is None:
        print(f"Every live process holds key {fingerprint(newest)}. {ENV_NOTE}.")
        print("Next: put it first in MFA_ENCRYPTION_KEYS on every host, restart, then `keys reencrypt`.")
        return newest
    write_keys(settings.keys_path, (newest, *present[:-1]))
    print(f"Key {fingerprint(newest)} now encrypts; the others still decrypt.")
    return newest


def reencrypt(settings: Settings, session: Session, *, wait: float) -> int:
    """Phase 3: every stored secret under the first key, which every live process must hold."""
    present = current(settings)
    if behind := wait_for(session, lambda: keys.live_without(session, present[0]), wait):
        raise Refused(f"these processes could not open secrets under key {fingerprint(present[0])}: {names(behind)}")
    try:
        count = keys.rotate_secrets(session, keyring=Keyring(present))
    except InvalidToken as exc:
        raise Refused("a stored secret can't be opened with any configured key; nothing was changed") from exc
    print(f"Re-encrypted {count} secret(s) under the newest key.")
    return count


def retire(settings: Settings, session: Session, *, wait: float, quiet_pending: bool = False) -> bool:
    """Phase 4: drop every key but the first, when nothing can still need them. False: kept for enrolments."""
    present = current(settings)
    if len(present) < 2:
        print("Only one key is configured: nothing to retire.")
        return True
    wait_for(session, lambda: keys.live_not_encrypting_with(session, present[0]), wait)
    blockers = keys.retire_blockers(session, keep=present[:1], drop=present[1:], ttl=settings.enrolment_ttl)
    if quiet_pending and blockers and all(b.kind == "enrolment" for b in blockers):
        print("The old key stays, for decrypting only, while enrolments sealed under it may be pending:")
        print("\n".join(f"  {b.message}" for b in blockers) + "\nThen run `keys retire`.")
        return False
    if blockers:
        raise Refused("the old key(s) are still needed:\n  " + "\n  ".join(b.message for b in blockers))
    if settings.keys_path is None:
        print(f"Safe to retire: keep only the first key in MFA_ENCRYPTION_KEYS on every host. {ENV_NOTE}.")
        return True
    write_keys(settings.keys_path, present[:1])
    print(f"Retired {len(present) - 1} old key(s).")
    return True


def rotate(settings: Settings, session: Session, *, wait: float) -> None:
    """All four phases with the managed file, each waiting for the live processes; with the keys in the
    environment, re-encrypt under the first key (the operator has put the new key first everywhere)."""
    if settings.keys_path is None:
        reencrypt(settings, session, wait=wait)
        print("Next: `keys retire` tells when the other keys can leave MFA_ENCRYPTION_KEYS.")
        return
    add(settings, session)
    newest = promote(settings, session, wait=wait)
    if behind := wait_for(session, lambda: keys.live_not_encrypting_with(session, newest), wait):
        raise Refused(f"these processes still encrypt with the old key: {names(behind)}; run `keys reencrypt` later")
    reencrypt(settings, session, wait=wait)
    if keys.needing_others(session, keep=current(settings)[:1]):
        reencrypt(settings, session, wait=wait)  # a secret written under the old key during the first pass
    retire(settings, session, wait=wait, quiet_pending=True)


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], session_of: Callable[[Settings], Session]
) -> None:
    """The `keys` subcommands, each with a database session; Refused means exit status 1."""
    key = commands.add_parser("keys", help="encryption keys").add_subparsers(dest="action", required=True)
    phases: dict[str, tuple[str, Callable[..., object]]] = {
        "add": ("phase 1: add a new key, decrypt-only", lambda s, db, wait: add(s, db)),
        "promote": ("phase 2: the newest key encrypts (every live process must hold it)", promote),
        "reencrypt": ("phase 3: re-encrypt every stored secret under the first key", reencrypt),
        "retire": ("phase 4: drop the old keys, only when nothing still needs them", retire),
        "rotate": ("all four phases in order (managed key file), waiting for live processes", rotate),
    }
    for name, (help_text, phase) in phases.items():
        parser = key.add_parser(name, help=help_text)
        parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for processes to report")
        parser.set_defaults(run=_runner(phase, session_of))


def _runner(phase: Callable[..., object], session_of: Callable[[Settings], Session]) -> Callable[..., None]:
    def run(settings: Settings, args: argparse.Namespace) -> None:
        with session_of(settings) as session:
            phase(settings, session, wait=args.wait)

    return run

"""Key rotation in phases, so that no process ever meets a secret it can't open:

1. add: a new key joins every process's set, decrypt-only;
2. promote: once every live process holds it, it becomes the encrypting key;
3. reencrypt: every stored secret is rewritten under it;
4. retire: the old keys go, once no live process encrypts with them, no pending enrolment sealed under them
   can still be confirmed, and no stored secret needs them.

The functions here decide; web/cli_keys.py changes the key file or tells the operator what to change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, select

from db.clock import now
from db.crypto import InvalidToken, Keyring, fingerprint
from db.keyholders import Holder, holders
from db.models import TotpDevice, Webhook


def _sealed_rows(session: Session) -> list[TotpDevice | Webhook]:
    return [*session.exec(select(TotpDevice)), *session.exec(select(Webhook))]


def rotate_secrets(session: Session, *, keyring: Keyring) -> int:
    """Every encrypted secret re-encrypted under the keyring's first key, in one transaction."""
    count = 0
    for row in _sealed_rows(session):
        row.secret_encrypted = keyring.rotate(row.secret_encrypted)
        session.add(row)
        count += 1
    session.commit()
    return count


def needing_others(session: Session, *, keep: Sequence[str]) -> int:
    """How many stored secrets the keys `keep` alone can't open."""
    keyring, count = Keyring(keep), 0
    for row in _sealed_rows(session):
        try:
            keyring.decrypt(row.secret_encrypted)
        except InvalidToken:
            count += 1
    return count


def live_without(session: Session, key: str) -> list[Holder]:
    """Live processes that have not loaded `key`: nothing may be sealed under it yet."""
    fp = fingerprint(key)
    return [h for h in holders(session) if h.live and fp not in h.fingerprints]


def live_not_encrypting_with(session: Session, key: str) -> list[Holder]:
    fp = fingerprint(key)
    return [h for h in holders(session) if h.live and h.primary != fp]


@dataclass(frozen=True)
class Blocker:
    kind: str  # "encrypting", "enrolment" (passes with time) or "stored" (passes with `keys reencrypt`)
    message: str


def retire_blockers(session: Session, *, keep: Sequence[str], drop: Sequence[str], ttl: int) -> list[Blocker]:
    """Why dropping `drop` (keeping `keep`) would lose something; empty when it is safe."""
    dropped = {fingerprint(k) for k in drop}
    since = now() - timedelta(seconds=ttl)
    reasons = []
    for h in holders(session):
        if h.live and h.primary in dropped:
            reasons.append(Blocker("encrypting", f"process {h.name} still encrypts with a key to be retired"))
        recent = [t for t in (h.old_sealed_at, h.sealed_at if h.primary in dropped else None) if t and t > since]
        if recent:
            until = (max(recent) + timedelta(seconds=ttl)).strftime("%Y-%m-%d %H:%M:%S UTC")
            message = f"process {h.name} sealed a pending enrolment under an old key; safe after {until}"
            reasons.append(Blocker("enrolment", message))
    if stale := needing_others(session, keep=keep):
        message = f"{stale} stored secret(s) still need a key to be retired: run `keys reencrypt`"
        reasons.append(Blocker("stored", message))
    return reasons

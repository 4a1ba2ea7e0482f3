"""Re-encrypting stored secrets under the newest key, so an old key can be retired."""

from __future__ import annotations

from sqlmodel import Session, select

from db.crypto import Keyring
from db.models import TotpDevice, Webhook


def rotate_secrets(session: Session, *, keyring: Keyring) -> int:
    """Every encrypted secret re-encrypted under the keyring's first key, in one transaction."""
    count = 0
    for row in [*session.exec(select(TotpDevice)), *session.exec(select(Webhook))]:
        row.secret_encrypted = keyring.rotate(row.secret_encrypted)
        session.add(row)
        count += 1
    session.commit()
    return count

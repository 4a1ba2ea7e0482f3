"""A member's passkeys as a factor of their account: adding, renaming and removing one, and what the second
step offers. Like the changes in db/mfa.py, adding or removing a passkey ends the member's other sessions,
is logged and queues a notice; the acting session continues on a new token.

The WebAuthn ceremonies themselves are db/factors/passkeys.py; this module wraps them in the account's rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session, select

from db import events
from db.errors import DomainError
from db.events import Actor, Owner
from db.factors import passkeys
from db.factors.relying_party import DEFAULT_NAME, NAME_MAX
from db.i18n import _
from db.mfa import Changed, MfaRequired, _changed
from db.models import TotpDevice

_BROWSERS = (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Mac OS X", "macOS"),
    ("Windows", "Windows"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


@dataclass(frozen=True)
class Added:
    session_token: str | None
    passkey_id: int


def failed(error: passkeys.PasskeyError, field: str = "credential") -> DomainError:
    """The passkey services' refusal as the one error type routes catch."""
    return DomainError(error.message, field=field, status=error.status)


def device_name(user_agent: str) -> str:
    """A first name for a passkey from the browser that made it ("Chrome on Linux"); the member may rename it."""
    browser = next((name for needle, name in _BROWSERS if needle in user_agent), "")
    system = next((name for needle, name in _SYSTEMS if needle in user_agent), "")
    name = f"{browser} on {system}" if browser and system else browser or system or DEFAULT_NAME
    return re.sub(r"\s+", " ", name)[:NAME_MAX]


def add_passkey(
    session: Session, *, user: Owner, handle: str, response_json: str, rp_id: str, origin: str, actor: Actor
) -> Added:
    """Verify the browser's new credential and keep it, named after its provider or the browser."""
    try:
        row = passkeys.register(
            session,
            user=user,
            handle=handle,
            response_json=response_json,
            rp_id=rp_id,
            origin=origin,
        )
    except passkeys.PasskeyError as error:
        events.record(session, "passkey_added", actor=actor, target=user, outcome="failure", detail=error.reason)
        session.commit()
        raise failed(error) from error
    if row.name == DEFAULT_NAME:
        row.name = device_name(actor.user_agent)
        session.add(row)
    assert row.id is not None
    changed = _changed(
        session,
        user=user,
        actor=actor,
        kind="passkey_added",
        text=_("A passkey was added to your account: %(name)s", name=row.name),
    )
    return Added(changed.session_token, row.id)


def rename_passkey(session: Session, *, user: Owner, passkey_id: int, name: str, actor: Actor) -> None:
    try:
        row = passkeys.rename_passkey(session, user_id=user.id or 0, passkey_id=passkey_id, name=name)
    except passkeys.PasskeyError as error:
        raise failed(error, "passkey_name") from error
    events.record(session, "passkey_renamed", actor=actor, target=user, detail=f"name={row.name}"[:255])
    session.commit()


def remove_passkey(session: Session, *, user: Owner, passkey_id: int, required: bool, actor: Actor) -> Changed:
    """Remove one passkey; refused when it is the member's last factor and the org policy requires MFA."""
    user_id = user.id or 0
    if required and not _has_totp(session, user_id) and passkeys.count_passkeys(session, user_id=user_id) <= 1:
        raise MfaRequired()
    try:
        row = passkeys.remove_passkey(session, user_id=user_id, passkey_id=passkey_id)
    except passkeys.PasskeyError as error:
        raise failed(error) from error
    text = _("A passkey was removed from your account: %(name)s", name=row.name)
    return _changed(session, user=user, actor=actor, kind="passkey_removed", text=text)


def _has_totp(session: Session, user_id: int) -> bool:
    return session.exec(select(TotpDevice.id).where(TotpDevice.user_id == user_id)).first() is not None

"""Second factors, one module each (`totp`, `recovery_codes`, `passkeys`), and the one check that the
sign-in, "Confirm it's you" and Disable paths all call.

Every check counts against one throttle per account, before it is made, whichever factor it uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn

from sqlmodel import Session

from db import events, notices, throttle
from db.crypto import Keyring
from db.errors import DomainError, IncorrectBackupCode, IncorrectCode
from db.events import Actor, Owner
from db.factors import passkey_store, passkeys, recovery_codes, totp
from db.i18n import _, ngettext

METHODS = ("totp", "backup", "passkey")
# "Confirm it's you" and the second step ask for a passkey under their own challenge purposes.
CHALLENGE_PURPOSES = {"sign_in": "second_step", "step_up": "step_up"}


@dataclass(frozen=True)
class Ceremony:
    """A passkey assertion's context: the challenge's handle from the cookie session, and the relying party."""

    handle: str
    rp_id: str
    origin: str


class PasskeyRefused(DomainError):
    """Any refused assertion, one message whatever the reason (the log has the reason)."""

    message = passkey_store.PASSKEY_REJECTED
    field = "credential"


class ClockSkew(IncorrectCode):
    """A code that is right for a time a few minutes away: still refused, but the member learns why."""

    def __init__(self, seconds: int) -> None:
        amount = abs(seconds)
        size = f"{round(amount / 60)} minutes" if amount >= 90 else f"{amount} seconds"
        way = "ahead" if seconds > 0 else "behind"
        super().__init__(
            f"That code is for another time: your device's clock seems to be about {size} {way}. Turn on "
            "automatic date and time on your phone (in Google Authenticator: Settings › Time correction for "
            "codes), then enter the new code."
        )


def verify_second_factor(
    session: Session,
    *,
    user: Owner,
    method: str,
    code: str,
    keyring: Keyring,
    actor: Actor,
    purpose: str,
    at: float | None = None,
    ceremony: Ceremony | None = None,
) -> str:
    """Accept an authenticator or backup code exactly once, or a passkey's assertion (`code` is its JSON,
    `ceremony` its challenge); returns the factor used. The caller commits a success with the change it
    allows; a refusal is recorded and committed here, then raised."""
    user_id = user.id or 0
    backup = method == "backup"
    lock = count_attempt(session, user=user, actor=actor, exempt=backup)
    if method == "passkey":
        _check_passkey(session, user=user, actor=actor, purpose=purpose, response=code, ceremony=ceremony, lock=lock)
        outcome, skew = "ok", None
    elif backup:
        outcome, skew = ("ok" if recovery_codes.verify(session, user_id=user_id, raw=code) else "wrong"), None
    else:
        outcome, skew = totp.verify(session, user_id=user_id, raw=code, keyring=keyring, at=at)
    factor = "passkey" if method == "passkey" else "backup_code" if backup else "totp"
    if outcome != "ok":
        refuse(
            session,
            user=user,
            actor=actor,
            detail=f"factor={factor} purpose={purpose}",
            outcome=outcome,
            lock=lock,
            error=IncorrectBackupCode() if backup else ClockSkew(skew) if skew else IncorrectCode(),
        )
    throttle.succeeded(session, throttle.user_key(user_id), client=throttle.client_key(actor.ip))
    if backup:
        left = recovery_codes.left(session, user_id=user_id)
        events.record(session, "backup_code_used", actor=actor, target=user, detail=f"purpose={purpose} left={left}")
        notices.add(session, user=user, text=used_text(left), actor=actor)
    return factor


LOW_CODES = 3  # at or below this many codes left, the member is told to make new ones


def used_text(left: int) -> str:
    """The one notice (and mail) for a backup code used; when few are left it says so, and what to do."""
    if left > LOW_CODES:
        return ngettext("A backup code was used (%(num)d left)", "A backup code was used (%(num)d left)", left)
    if left == 0:
        return _(
            "A backup code was used: you have no backup codes left. Make new ones in Settings › Multi-Factor "
            "Authentication › Regenerate backup codes"
        )
    return ngettext(
        "A backup code was used: you have only %(num)d backup code left. Make new ones in Settings › "
        "Multi-Factor Authentication › Regenerate backup codes",
        "A backup code was used: you have only %(num)d backup codes left. Make new ones in Settings › "
        "Multi-Factor Authentication › Regenerate backup codes",
        left,
    )


def _check_passkey(
    session: Session,
    *,
    user: Owner,
    actor: Actor,
    purpose: str,
    response: str,
    ceremony: Ceremony | None,
    lock: datetime | None,
) -> None:
    """The assertion through py_webauthn; a refusal goes the way of a wrong code (counted, logged, raised),
    and a signature counter gone back is logged as a possible cloned authenticator."""
    try:
        if ceremony is None:
            raise passkeys.PasskeyRejected("challenge")
        passkeys.verify_assertion(
            session,
            user=user,
            purpose=CHALLENGE_PURPOSES.get(purpose, purpose),
            handle=ceremony.handle,
            response_json=response,
            rp_id=ceremony.rp_id,
            origin=ceremony.origin,
        )
    except passkeys.PasskeyRejected as rejected:
        detail = f"factor=passkey purpose={purpose} reason={rejected.reason}"
        if rejected.clone_suspected:  # committed here, as refuse() rolls back what is pending
            session.rollback()
            events.record(
                session, "passkey_clone_suspected", actor=actor, target=user, outcome="failure", detail=detail
            )
            session.commit()
        refuse(session, user=user, actor=actor, detail=detail, outcome="wrong", lock=lock, error=PasskeyRefused())


def count_attempt(session: Session, *, user: Owner, actor: Actor, exempt: bool) -> datetime | None:
    """Count the attempt under the account and the client address; returns until when a failure now would
    lock the account (None: it wouldn't)."""
    keys = [(throttle.user_key(user.id or 0), throttle.SECOND_FACTOR), (throttle.client_key(actor.ip), throttle.CLIENT)]
    try:
        return throttle.take_attempts(session, keys, exempt=exempt)
    except throttle.Throttled:
        events.record(session, "throttled", actor=actor, target=user, outcome="failure", detail="second factor")
        session.commit()
        raise


def refuse(
    session: Session, *, user: Owner, actor: Actor, detail: str, outcome: str, lock: datetime | None, error: DomainError
) -> NoReturn:
    """Undo the attempt's changes, record the failure (and a replay, and a lock starting), commit, raise."""
    session.rollback()
    events.record(session, "second_factor_failed", actor=actor, target=user, outcome="failure", detail=detail)
    if outcome == "replay":
        events.record(session, "replay_refused", actor=actor, target=user, outcome="failure", detail=detail)
    if lock:
        until = f"second factor locked until {lock:%Y-%m-%d %H:%M} UTC"  # the log says when the lock ends
        events.record(session, "throttled", actor=actor, target=user, outcome="failure", detail=until)
    session.commit()
    raise error


def remove_all(session: Session, *, user_id: int, keep_passkeys: bool = False) -> None:
    """Every second factor of a member, and their backup codes (Reset MFA; turning the authenticator off
    keeps the passkeys, which are switched off one by one). The caller commits."""
    recovery_codes.remove(session, user_id=user_id)
    totp.remove(session, user_id=user_id)
    if not keep_passkeys:
        passkey_store.remove_all(session, user_id)

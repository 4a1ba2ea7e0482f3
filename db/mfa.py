"""Multi-factor authentication: enrolling an authenticator, checking second factors, backup codes, reset.

Every code is single use on every path and across processes: a TOTP code is accepted by one conditional
UPDATE that moves `last_used_step` forward, a backup code by one that sets `used_at`. Every check counts
against one throttle per account (TOTP, backup codes and step-up alike).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from db import codes, events, notices, signins, throttle, totp
from db.clock import now
from db.crypto import InvalidToken, Keyring
from db.events import Actor
from db.models import RecoveryCode, TotpDevice, User

INCORRECT_CODE = "Incorrect code. Check your authenticator app and try again."
INCORRECT_BACKUP_CODE = "Incorrect backup code."
ENROLMENT_EXPIRED = "This set-up has expired. Turn Enable on again to get a new QR code."
MFA_REQUIRED = "Your organization requires multi-factor authentication for your role, so it can't be turned off."
ALREADY_ENABLED = "Multi-factor authentication is already on."


class IncorrectCode(Exception):
    """Wrong, malformed, reused or uncheckable code: one answer for all, so none of them leaks which."""


class EnrolmentExpired(Exception):
    pass


class MfaRequired(Exception):
    pass


class AlreadyEnabled(Exception):
    pass


@dataclass(frozen=True)
class Changed:
    """The outcome of an MFA change: the new backup codes (if any) and the acting session's new token."""

    token: str | None
    codes: list[str]


# ---- enrolment: the new secret lives only in the (encrypted) session value until a code confirms it


def begin_enrolment(keyring: Keyring, *, user_id: int) -> tuple[str, str]:
    """A new secret, and the same sealed for the session cookie (bound to the member, dated by Fernet)."""
    secret = totp.new_secret()
    return keyring.encrypt(json.dumps({"secret": secret, "user": user_id})), secret


def open_enrolment(keyring: Keyring, sealed: str, *, user_id: int, ttl: int) -> str:
    """The pending secret, if `sealed` is this member's and younger than `ttl` seconds."""
    try:
        data = json.loads(keyring.decrypt(sealed, ttl=ttl))
    except (InvalidToken, ValueError, TypeError) as error:
        raise EnrolmentExpired() from error
    if not isinstance(data, dict) or data.get("user") != user_id or not isinstance(data.get("secret"), str):
        raise EnrolmentExpired()
    return data["secret"]


def confirm_totp(
    session: Session,
    *,
    user: User,
    sealed: str,
    code: str,
    keyring: Keyring,
    ttl: int,
    actor: Actor,
    at: float | None = None,
) -> Changed:
    """Store the authenticator once a code from it matches; returns the first backup codes."""
    secret = open_enrolment(keyring, sealed, user_id=user.id or 0, ttl=ttl)
    if session.exec(select(TotpDevice.id).where(TotpDevice.user_id == user.id)).first() is not None:
        raise AlreadyEnabled()
    _count_attempt(session, user=user, actor=actor)
    step = totp.matching_step(secret, code, at=at)
    if step is None:
        _failed(session, user=user, actor=actor, factor="totp", purpose="enrolment")
    session.add(TotpDevice(user_id=user.id or 0, secret_encrypted=keyring.encrypt(secret), last_used_step=step))
    try:
        session.flush()
    except IntegrityError as error:  # a parallel Confirm won the race
        session.rollback()
        raise AlreadyEnabled() from error
    new_codes = _replace_codes(session, user=user)
    _succeeded(session, user=user, actor=actor)
    events.record(session, "mfa_enabled", actor=actor, target=user)
    notices.add(session, user=user, text="Multi-factor authentication was turned on for your account", actor=actor)
    return Changed(token=_end_other_sessions(session, user=user, actor=actor), codes=new_codes)


def disable_totp(
    session: Session,
    *,
    user: User,
    code: str,
    backup: bool,
    keyring: Keyring,
    required: bool,
    actor: Actor,
    at: float | None = None,
) -> Changed:
    """Turn MFA off, proven by a current code or a backup code; refused while the org policy requires it."""
    if required:
        raise MfaRequired()
    verify_second_factor(
        session, user=user, code=code, backup=backup, keyring=keyring, actor=actor, purpose="disable", at=at
    )
    _remove_factors(session, user_id=user.id or 0)
    events.record(session, "mfa_disabled", actor=actor, target=user)
    notices.add(session, user=user, text="Multi-factor authentication was turned off for your account", actor=actor)
    return Changed(token=_end_other_sessions(session, user=user, actor=actor), codes=[])


def regenerate_recovery_codes(session: Session, *, user: User, actor: Actor) -> Changed:
    """A new set of backup codes; every earlier code stops working. The route has checked step-up."""
    if session.exec(select(TotpDevice.id).where(TotpDevice.user_id == user.id)).first() is None:
        raise IncorrectCode()
    new_codes = _replace_codes(session, user=user)
    events.record(session, "backup_codes_regenerated", actor=actor, target=user)
    notices.add(session, user=user, text="New backup codes were made; the old ones no longer work", actor=actor)
    return Changed(token=_end_other_sessions(session, user=user, actor=actor), codes=new_codes)


def reset_mfa(session: Session, *, user: User, actor: Actor, reason: str) -> None:
    """An admin or the operator removes a member's second factor (lost device) and ends all their sessions."""
    _remove_factors(session, user_id=user.id or 0)
    signins.end_others(session, user_id=user.id or 0, keep=None)
    throttle.clear(session, throttle.user_key(user.id or 0))
    events.record(session, "mfa_reset", actor=actor, target=user, detail=f"reason={reason}"[:255])
    notices.add(session, user=user, text=f"Your multi-factor authentication was reset by {actor.label}", actor=actor)
    session.commit()


# ---- checking a second factor


def verify_second_factor(
    session: Session,
    *,
    user: User,
    code: str,
    backup: bool,
    keyring: Keyring,
    actor: Actor,
    purpose: str,
    at: float | None = None,
) -> str:
    """Accept an authenticator or backup code exactly once; returns the factor used. The caller commits.

    Raises throttle.Throttled while the account is locked and IncorrectCode for anything else that fails.
    """
    _count_attempt(session, user=user, actor=actor)
    factor = "backup_code" if backup else "totp"
    if backup:
        outcome = "ok" if _use_backup_code(session, user=user, raw=code) else "wrong"
    else:
        outcome = _use_totp(session, user=user, raw=code, keyring=keyring, at=at)
    if outcome != "ok":
        _failed(session, user=user, actor=actor, factor=factor, purpose=purpose, replay=outcome == "replay")
    _succeeded(session, user=user, actor=actor)
    if backup:
        left = _codes_left(session, user_id=user.id or 0)
        events.record(session, "backup_code_used", actor=actor, target=user, detail=f"purpose={purpose} left={left}")
        notices.add(session, user=user, text=f"A backup code was used ({left} left)", actor=actor)
    return factor


def _count_attempt(session: Session, *, user: User, actor: Actor) -> None:
    keys = [(throttle.user_key(user.id or 0), throttle.SECOND_FACTOR), (throttle.client_key(actor.ip), throttle.CLIENT)]
    try:
        lock = throttle.take_attempts(session, keys)
    except throttle.Throttled:
        events.record(session, "throttled", actor=actor, target=user, outcome="failure", detail="second factor")
        session.commit()
        raise
    session.info["lock"] = lock


def _failed(session: Session, *, user: User, actor: Actor, factor: str, purpose: str, replay: bool = False) -> None:
    session.rollback()
    detail = f"factor={factor} purpose={purpose}"
    events.record(session, "second_factor_failed", actor=actor, target=user, outcome="failure", detail=detail)
    if replay:
        events.record(session, "replay_refused", actor=actor, target=user, outcome="failure", detail=detail)
    if session.info.pop("lock", None):
        events.record(session, "throttled", actor=actor, target=user, outcome="failure", detail="second factor")
    session.commit()
    raise IncorrectCode()


def _succeeded(session: Session, *, user: User, actor: Actor) -> None:
    session.info.pop("lock", None)
    throttle.clear(session, throttle.user_key(user.id or 0))
    throttle.give_back(session, throttle.client_key(actor.ip))


def _use_totp(session: Session, *, user: User, raw: str, keyring: Keyring, at: float | None) -> str:
    """ "ok", "wrong" or "replay" (the code matched a time step already accepted)."""
    device = session.exec(select(TotpDevice).where(TotpDevice.user_id == user.id)).first()
    if device is None:
        return "wrong"
    try:
        secret = keyring.decrypt(device.secret_encrypted)
    except InvalidToken:
        return "wrong"  # key lost or replaced: fail closed with the generic answer
    step = totp.matching_step(secret, raw, at=at)
    if step is None:
        return "wrong"
    accepted = session.execute(
        update(TotpDevice)
        .where(
            col(TotpDevice.id) == device.id,
            or_(col(TotpDevice.last_used_step).is_(None), col(TotpDevice.last_used_step) < step),
        )
        .values(last_used_step=step)
    )
    return "ok" if accepted.rowcount == 1 else "replay"


def _use_backup_code(session: Session, *, user: User, raw: str) -> bool:
    code = codes.normalize(raw)
    if code is None:
        return False
    rows = session.exec(
        select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.lookup == codes.lookup_of(code),
            col(RecoveryCode.used_at).is_(None),
        )
    ).all()
    for row in rows:
        if codes.matches(row.code_hash, code):
            used = session.execute(
                update(RecoveryCode)
                .where(col(RecoveryCode.id) == row.id, col(RecoveryCode.used_at).is_(None))
                .values(used_at=now())
            )
            return used.rowcount == 1
    return False


def _codes_left(session: Session, *, user_id: int) -> int:
    return len(
        session.exec(
            select(RecoveryCode.id).where(RecoveryCode.user_id == user_id, col(RecoveryCode.used_at).is_(None))
        ).all()
    )


def _replace_codes(session: Session, *, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    fresh = codes.generate()
    for shown in fresh:
        code = codes.normalize(shown) or ""
        session.add(RecoveryCode(user_id=user.id or 0, lookup=codes.lookup_of(code), code_hash=codes.hash_code(code)))
    return fresh


def _remove_factors(session: Session, *, user_id: int) -> None:
    session.execute(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
    session.execute(delete(TotpDevice).where(col(TotpDevice.user_id) == user_id))


def _end_other_sessions(session: Session, *, user: User, actor: Actor) -> str | None:
    """MFA changed: every other browser signs in again; this one continues on a new token. Commits."""
    signins.end_others(session, user_id=user.id or 0, keep=actor.session_id)
    token = signins.rotate(session, session_id=actor.session_id, verified=True) if actor.session_id else None
    session.commit()
    return token

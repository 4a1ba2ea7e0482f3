"""The authenticator app: time-based one-time passwords (RFC 6238) on top of pyotp, with the checks pyotp
leaves to the caller, and the member's enrolled device.

pyotp compares after NFKC normalisation (fullwidth digits pass) and `int()`/`\\d` accept other scripts'
digits, so a code is accepted only as exactly `digits` ASCII digits. Matching returns the time step, so the
caller can refuse a step it has already accepted (replay) in one conditional UPDATE.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from typing import Any

import pyotp
from sqlalchemy import bindparam, delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from db.crypto import InvalidToken, Keyring
from db.errors import DomainError
from db.i18n import _
from db.models import TotpDevice
from db.sql import affected, columns

PERIOD = 30
DIGITS = 6
DRIFT_STEPS = 1  # RFC 6238 §5.2: at most one step either side for network delay and clock drift
MAX_INPUT = 32
SKEW_STEPS = 20  # codes up to 10 minutes away are recognised, to tell the member their clock is off
_SPACES = re.compile(r"[ \t]")


class EnrolmentExpired(DomainError):
    message = _("This set-up has expired. Turn Enable on again to get a new QR code.")


class AlreadyEnabled(DomainError):
    message = _("Multi-factor authentication is already on.")


def new_secret() -> str:
    """160 random bits from the OS CSPRNG, as 32 base32 characters (RFC 4226 R6 recommends 160)."""
    return pyotp.random_base32()


def parse_code(raw: str, *, digits: int = DIGITS) -> str | None:
    """The code as typed, minus ASCII spaces and tabs, if it is exactly `digits` ASCII digits; else None."""
    if len(raw) > MAX_INPUT:
        return None
    code = _SPACES.sub("", raw)
    if len(code) == digits and code.isascii() and code.isdigit():
        return code
    return None


def step_at(at: float) -> int:
    return int(at // PERIOD)


def code_at_step(secret: str, step: int, *, digits: int = DIGITS, digest: Callable[..., Any] = hashlib.sha1) -> str:
    return pyotp.TOTP(secret, digits=digits, digest=digest, interval=PERIOD).generate_otp(step)


def matching_step(
    secret: str,
    raw_code: str,
    *,
    at: float | None = None,
    digits: int = DIGITS,
    digest: Callable[..., Any] = hashlib.sha1,
    drift: int = DRIFT_STEPS,
) -> int | None:
    """The time step whose code equals `raw_code`, within ±`drift` steps of `at` (server clock), or None.

    Every candidate is compared in constant time, and all are compared, so timing says nothing of which matched.
    """
    code = parse_code(raw_code, digits=digits)
    if code is None:
        return None
    current = step_at(time.time() if at is None else at)
    found = None
    for step in range(current - drift, current + drift + 1):
        if hmac.compare_digest(code_at_step(secret, step, digits=digits, digest=digest), code):
            found = step
    return found


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The otpauth:// URI that authenticator apps scan (Key Uri Format: label `issuer:account`)."""
    if ":" in issuer or ":" in account:
        raise ValueError("issuer and account may not contain ':'")
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


# ---- the member's authenticator


def begin_enrolment(keyring: Keyring, *, user_id: int) -> tuple[str, str]:
    """A new secret, and the same sealed for the session cookie (bound to the member, dated by Fernet)."""
    secret = new_secret()
    return keyring.encrypt(json.dumps({"secret": secret, "user": user_id})), secret


def open_enrolment(keyring: Keyring, sealed: str, *, user_id: int, ttl: int) -> str:
    """The pending secret, if `sealed` is this member's and younger than `ttl` seconds."""
    try:
        data = json.loads(keyring.decrypt(sealed, ttl=ttl))
    except (InvalidToken, ValueError, TypeError) as error:
        raise EnrolmentExpired() from error
    if not isinstance(data, dict) or data.get("user") != user_id or not isinstance(data.get("secret"), str):
        raise EnrolmentExpired()
    return str(data["secret"])


def add(session: Session, *, user_id: int, secret: str, code: str, keyring: Keyring, at: float | None) -> bool:
    """Store the authenticator if `code` matches its secret; False when it doesn't. The caller commits."""
    if session.exec(select(TotpDevice.id).where(TotpDevice.user_id == user_id)).first() is not None:
        raise AlreadyEnabled()
    step = matching_step(secret, code, at=at)
    if step is None:
        return False
    session.add(TotpDevice(user_id=user_id, secret_encrypted=keyring.encrypt(secret), last_used_step=step))
    try:
        session.flush()
    except IntegrityError as error:  # a parallel Confirm won the race
        session.rollback()
        raise AlreadyEnabled() from error
    return True


def clock_skew(secret: str, raw_code: str, *, at: float | None = None) -> int | None:
    """Seconds the device's clock seems ahead (+) or behind (-) when `raw_code` is wrong for now but right
    for a time step up to SKEW_STEPS away. Only explains a refusal: the window stays ±DRIFT_STEPS."""
    current = step_at(time.time() if at is None else at)
    near = matching_step(secret, raw_code, at=at, drift=SKEW_STEPS)
    if near is None or abs(near - current) <= DRIFT_STEPS:
        return None
    return (near - current) * PERIOD


def verify(session: Session, *, user_id: int, raw: str, keyring: Keyring, at: float | None) -> tuple[str, int | None]:
    """("ok" | "wrong" | "replay" | "skew", seconds off): a code is accepted by one conditional UPDATE that
    moves `last_used_step` forward, so it works once across sessions and processes."""
    device = session.execute(_DEVICE, {"user_id": user_id}).first()
    if device is None:
        return "wrong", None
    try:
        secret = keyring.decrypt(device.secret_encrypted)
    except InvalidToken:
        return "wrong", None  # key lost or replaced: fail closed with the generic answer
    step = matching_step(secret, raw, at=at)
    if step is None:
        skew = clock_skew(secret, raw, at=at)
        return ("wrong", None) if skew is None else ("skew", skew)
    accepted = session.execute(_USE_STEP, {"device_id": device.id, "step": step})
    return ("ok" if affected(accepted) == 1 else "replay"), None


_D = columns(TotpDevice)
_DEVICE = select(_D.id, _D.secret_encrypted).where(_D.user_id == bindparam("user_id"))
# Moves the last used step forward, or changes nothing: a code is accepted by the one UPDATE that changed a row.
_USE_STEP = (
    update(_D.id.table)
    .where(_D.id == bindparam("device_id"), or_(_D.last_used_step.is_(None), _D.last_used_step < bindparam("step")))
    .values(last_used_step=bindparam("step"))
)


def remove(session: Session, *, user_id: int) -> None:
    session.execute(delete(TotpDevice).where(col(TotpDevice.user_id) == user_id))

"""Time-based one-time passwords (RFC 6238) on top of pyotp, with the checks pyotp leaves to the caller.

pyotp compares after NFKC normalisation (fullwidth digits pass) and `int()`/`\\d` accept other scripts'
digits, so a code is accepted only as exactly `digits` ASCII digits. Matching returns the time step, so the
caller can refuse a step it has already accepted (replay) in one conditional UPDATE.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from typing import Any

import pyotp

PERIOD = 30
DIGITS = 6
DRIFT_STEPS = 1  # RFC 6238 §5.2: at most one step either side for network delay and clock drift
MAX_INPUT = 32
_SPACES = re.compile(r"[ \t]")


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

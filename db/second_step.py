"""What the second step of a pending sign-in offers: the authenticator app, passkeys (each page view with a
fresh challenge), and "Remember this browser" for as many days as the org policy allows the member's role.

One service for the page, so it costs one worker-thread hop and three statements: the pending member, their
factors, the policy (and a challenge only when they have a passkey).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, exists, func, select
from sqlmodel import Session

from db import devices, sessions
from db.factors import passkeys
from db.models import OrgPolicy, PasskeyCredential, TotpDevice
from db.sql import columns

_T, _P = columns(TotpDevice), columns(PasskeyCredential)


_FACTORS = select(  # built once: its compiled form is reused
    exists().where(_T.user_id == bindparam("user_id")),
    select(func.count()).where(_P.user_id == bindparam("user_id")).scalar_subquery(),
)


@dataclass(frozen=True)
class Offer:
    has_totp: bool
    remember_days: int = 0
    options: str | None = None  # WebAuthn request options (JSON), when the member has a passkey
    handle: str | None = None  # the challenge's handle, kept in the cookie session


def offer(session: Session, *, token: str, ttl: int, rp_id: str) -> Offer | None:
    """What the pending sign-in behind `token` may use; None when it is gone (expired, or ended)."""
    user = sessions.load_pending(session, token=token, ttl=ttl)
    if user is None or user.id is None:
        return None
    totp, keys = session.execute(_FACTORS, {"user_id": user.id}).one()
    days = devices.allowed_days(session.get(OrgPolicy, 1), role=user.role)
    if not keys:
        return Offer(bool(totp), days)
    options, handle = passkeys.authentication_options(session, user=user, purpose="second_step", rp_id=rp_id)
    return Offer(bool(totp), days, options, handle)

"""The settings that sit behind step-up re-authentication: webhooks and billing."""

from __future__ import annotations

import secrets

from sqlmodel import Session, col, select

from db import events, outbound
from db.clock import now
from db.crypto import Keyring
from db.errors import InvalidInput, NotFound
from db.events import Actor
from db.i18n import _
from db.models import Billing, Webhook
from db.users import normalize_email

PLANS = {"starter": _("Starter"), "team": _("Team"), "business": _("Business")}


def list_webhooks(session: Session) -> list[Webhook]:
    return list(session.exec(select(Webhook).order_by(col(Webhook.id))))


def add_webhook(
    session: Session,
    *,
    url: str,
    keyring: Keyring,
    actor: Actor,
    resolver: outbound.Resolver = outbound.system_resolver,
) -> tuple[Webhook, str]:
    """A webhook to a public https URL, and its signing secret (shown once; kept encrypted to sign deliveries).

    The name is resolved (it may block: routes call this off the event loop) and refused when it is, or
    resolves to, an internal address; delivery checks again (db/delivery.py)."""
    url = url.strip()
    target = outbound.check_url(url, resolver=resolver)
    secret = "whsec_" + secrets.token_urlsafe(24)
    hook = Webhook(url=url, secret_encrypted=keyring.encrypt(secret))
    session.add(hook)
    events.record(session, "webhook_changed", actor=actor, detail=f"added {target.host}"[:255])
    session.commit()
    return hook, secret


def set_webhook_enabled(session: Session, *, webhook_id: int, enabled: bool, actor: Actor) -> None:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound()
    hook.enabled = enabled
    session.add(hook)
    events.record(session, "webhook_changed", actor=actor, detail=f"{'enabled' if enabled else 'disabled'} #{hook.id}")
    session.commit()


def delete_webhook(session: Session, *, webhook_id: int, actor: Actor) -> str:
    hook = session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound()
    session.delete(hook)
    events.record(session, "webhook_changed", actor=actor, detail=f"deleted #{webhook_id}")
    session.commit()
    return hook.url


def get_billing(session: Session) -> Billing:
    return session.get(Billing, 1) or Billing(id=1)


def save_billing(session: Session, *, plan: str, billing_email: str, actor: Actor) -> Billing:
    if plan not in PLANS:
        raise InvalidInput("plan", _("Choose one of the plans."))
    try:
        email = normalize_email(billing_email)
    except InvalidInput as error:
        raise InvalidInput("billing_email", error.message) from error
    billing = get_billing(session)
    billing.plan, billing.billing_email, billing.updated_at = plan, email, now()
    session.add(billing)
    events.record(session, "billing_changed", actor=actor, detail=f"plan={plan}")
    session.commit()
    return billing

"""Webhooks and billing: real, persisted settings with validation; admins only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from db.engine import open_session
from db.models import Webhook
from tests.conftest import Auth, Member
from web.app import keyring_for  # noqa: I001

HX = {"HX-Request": "true"}


def _hooks(engine: Engine) -> list[Webhook]:
    with open_session(engine) as session:
        return list(session.exec(select(Webhook)))


@pytest.mark.parametrize(
    "url", ["http://example.com/hook", "ftp://example.com", "example.com", "https://", "https://u:p@example.com", ""]
)
def test_webhook_url_must_be_https(auth: Auth, admin: Member, engine: Engine, url: str) -> None:
    auth.login(admin)
    response = auth.post("/settings/webhooks", {"url": url}, page="/settings/webhooks", headers=HX)
    assert response.status_code == 422
    assert re.search(r'id="url"[^>]*aria-invalid="true"[^>]*aria-describedby="url-hint url-error"', response.text)
    assert _hooks(engine) == []


def test_add_toggle_and_delete_a_webhook(auth: Auth, admin: Member, client: TestClient, engine: Engine) -> None:
    auth.login(admin)
    added = auth.post("/settings/webhooks", {"url": "https://example.com/hook"}, page="/settings/webhooks")
    assert added.status_code == 200 and added.headers["Cache-Control"] == "no-store"
    secret = re.search(r"<code>(whsec_[^<]+)</code>", added.text)
    assert secret
    [hook] = _hooks(engine)
    assert secret.group(1) not in hook.secret_encrypted
    assert keyring_for(auth.settings).decrypt(hook.secret_encrypted) == secret.group(1)
    assert secret.group(1) not in client.get("/settings/webhooks").text  # shown once
    toggle = auth.post(f"/settings/webhooks/{hook.id}/toggle", {"enabled": "0"}, page="/settings/webhooks")
    assert toggle.status_code == 303
    assert not _hooks(engine)[0].enabled
    deleted = auth.post(f"/settings/webhooks/{hook.id}/delete", page="/settings/webhooks", headers=HX)
    assert _hooks(engine) == []
    # the button is gone with its row: focus goes to the status that says what happened
    assert re.search(r'role="status"[^>]*autofocus>Deleted the webhook for <strong>https://', deleted.text)
    assert auth.post("/settings/webhooks/999/delete", page="/settings/webhooks").status_code == 404


def test_billing_saves_plan_and_email(auth: Auth, admin: Member, client: TestClient) -> None:
    auth.login(admin)
    page = client.get("/settings/billing").text
    assert '<label for="billing_email">Billing email</label>' in page and ">Save billing details</button>" in page
    bad = auth.post("/settings/billing", {"plan": "team", "billing_email": "nope"}, page="/settings/billing")
    assert bad.status_code == 422 and 'aria-describedby="billing_email-error"' in bad.text
    odd = auth.post("/settings/billing", {"plan": "gold", "billing_email": "b@example.com"}, page="/settings/billing")
    assert odd.status_code == 422
    ok = auth.post("/settings/billing", {"plan": "team", "billing_email": "B@example.com"}, page="/settings/billing")
    assert ok.status_code == 303
    html = client.get(ok.headers["location"]).text
    assert "Saved the billing details" in html and 'value="b@example.com"' in html and "<strong>Team</strong>" in html


def test_agents_cannot_change_sensitive_settings(auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    response = auth.post("/settings/webhooks", {"url": "https://example.com/x"}, page="/settings")
    assert response.status_code == 403
    assert _hooks(engine) == []

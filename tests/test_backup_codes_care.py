"""Backup codes care: a clear notice (and mail) when few are left, and "I have saved my backup codes",
whose reminder stays in the Backup codes row until answered and comes back with new codes."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from db.engine import open_session
from db.models import Notice, SecurityEvent
from tests.conftest import Auth, Member, setup_key
from web.outbox import deliver_now

HX = {"HX-Request": "true"}
SAVED = "/settings/mfa/backup-codes/saved"
REMINDER = "You haven't confirmed that you saved your backup codes"


def _use_codes(auth: Auth, member: Member, count: int) -> None:
    for code in (member.codes or [])[:count]:
        auth.password(member)
        response = auth.post("/login/verify", {"method": "backup", "backup_code": code}, page="/login/verify")
        assert response.status_code == 303, response.text
        auth.logout()
    member.codes = (member.codes or [])[count:]


def _notices(engine: Engine) -> list[str]:
    with open_session(engine) as session:
        return [n.text for n in session.exec(select(Notice).order_by(Notice.id))]


def test_using_a_code_down_to_three_left_says_so_once_and_mails_it(
    auth: Auth, member_with_totp: Member, engine: Engine
) -> None:
    _use_codes(auth, member_with_totp, 6)
    used = [t for t in _notices(engine) if "backup code was used" in t]
    assert len(used) == 6 and "(4 left)" in used[-1] and "only" not in used[-1]
    _use_codes(auth, member_with_totp, 1)
    used = [t for t in _notices(engine) if "backup code was used" in t]
    assert len(used) == 7  # one notice for the use, not a second one for the low count
    assert "you have only 3 backup codes left" in used[-1] and "Regenerate backup codes" in used[-1]
    deliver_now(auth.settings, engine)
    assert "only 3 backup codes left" in (auth.settings.data_dir / "outbox.txt").read_text()


def test_last_code_used_says_none_are_left(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    _use_codes(auth, member_with_totp, 10)
    assert "you have no backup codes left" in _notices(engine)[-1]


def test_codes_shown_offer_copy_print_and_saved(auth: Auth, member: Member, client: TestClient) -> None:
    auth.login(member)
    response = auth.post("/settings/mfa/totp/enable", page="/settings/mfa/totp", headers=HX)
    member.secret = setup_key(response.text)
    shown = auth.post("/settings/mfa/totp/confirm", {"code": member.fresh_code()}, page="/settings/mfa/totp")
    assert "I have saved my backup codes</button>" in shown.text
    assert 'data-copy-codes="backup-codes-list" hidden>Copy backup codes' in shown.text  # needs JS: shown by it
    assert "data-print-codes hidden>Print backup codes" in shown.text
    assert 'class="print-codes"' in shown.text
    assert REMINDER not in shown.text  # the codes are on screen: the button is next to them, not in the row


def test_reminder_stays_until_saved_without_htmx(
    auth: Auth, member_with_totp: Member, client: TestClient, engine: Engine
) -> None:
    auth.login(member_with_totp)
    assert REMINDER in client.get("/settings?section=mfa").text
    assert REMINDER in client.get("/settings?section=mfa").text  # every visit, until answered
    response = auth.post(SAVED, page="/settings?section=mfa")
    assert response.status_code == 303 and response.headers["location"] == "/settings?section=mfa"
    assert REMINDER not in client.get("/settings?section=mfa").text
    with open_session(engine) as session:
        kinds = [e.kind for e in session.exec(select(SecurityEvent))]
    assert kinds.count("backup_codes_saved") == 1


def test_saved_with_htmx_answers_the_section(auth: Auth, member_with_totp: Member, client: TestClient) -> None:
    auth.login(member_with_totp)
    response = auth.post(SAVED, page="/settings?section=mfa", headers=HX)
    assert response.status_code == 200
    assert response.template.name == "account/_mfa_section.html"  # type: ignore[attr-defined]
    assert "You confirmed that you saved your backup codes." in response.text
    assert REMINDER not in response.text


def test_new_codes_need_saving_again(auth: Auth, member_with_totp: Member, client: TestClient) -> None:
    auth.login(member_with_totp)
    auth.post(SAVED, page="/settings?section=mfa")
    assert REMINDER not in client.get("/settings?section=mfa").text
    auth.post("/settings/mfa/backup-codes/regenerate", page="/settings")
    assert REMINDER in client.get("/settings?section=mfa").text


def test_saved_needs_csrf_and_a_session(auth: Auth, member_with_totp: Member, client: TestClient) -> None:
    assert client.post(SAVED).status_code in (303, 403)
    auth.login(member_with_totp)
    assert client.post(SAVED, data={"csrf_token": "forged"}).status_code == 403

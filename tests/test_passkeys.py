"""Passkeys over HTTP: the routes' guards (step-up, CSRF), and each ceremony finished with py_webauthn's recorded
responses. The app runs under the vectors' PUBLIC_URL (RP ID localhost); a recorded response answers one exact
challenge, so each test puts that challenge into the row the route just issued, as if the server had drawn it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, update
from sqlmodel import col, select
from starlette.testclient import TestClient
from webauthn.helpers import base64url_to_bytes

from db import mfa
from db.engine import open_session
from db.events import OPERATOR
from db.models import AuthSession, PasskeyCredential, SecurityEvent, Throttle, WebAuthnChallenge
from db.throttle import user_key
from tests.conftest import Auth, Clock, Member, make_settings
from tests.passkey_vectors import (
    ASSERTION_EC2,
    ASSERTION_NO_UV,
    ASSERTION_RSA_UV,
    PUBLIC_URL,
    REGISTRATION_NONE,
    Vector,
)
from web.config import Settings

WRONG_PASSWORD = "Incorrect email or password."
REJECTED = "That passkey wasn&#39;t accepted"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def settings(tmp_path: Path, clock: Clock) -> Settings:
    return make_settings(tmp_path, totp_clock=clock, public_url=PUBLIC_URL)


def answer_with(engine: Engine, vector: Vector) -> None:
    """The challenge the route issued last becomes the one the recorded response signed."""
    with open_session(engine) as session:
        last = session.exec(select(func.max(WebAuthnChallenge.id))).one()
        session.execute(
            update(WebAuthnChallenge).where(col(WebAuthnChallenge.id) == last).values(challenge=vector.challenge)
        )
        session.commit()


def answer(auth: Auth, vector: Vector, path: str, data: dict[str, str], *, page: str, **kw: object):  # noqa: ANN201
    """Open `page` (which issues the challenge and shows the CSRF token), then post the recorded response."""
    token = auth.token(page)
    answer_with(auth.engine, vector)
    return auth.client.post(path, data={"csrf_token": token, **data}, **kw)  # type: ignore[arg-type]


def store(engine: Engine, vector: Vector, member: Member, count: int | None = None) -> int:
    with open_session(engine) as session:
        row = PasskeyCredential(
            user_id=member.user.id or 0,
            credential_id=vector.credential_id,
            user_handle=vector.user_handle or "b3duZXI",
            public_key=base64url_to_bytes(vector.public_key),
            sign_count=vector.stored_count if count is None else count,
            name="Work laptop",
        )
        session.add(row)
        session.commit()
        return row.id or 0


def passkeys_of(engine: Engine, member: Member) -> list[str]:
    with open_session(engine) as session:
        return list(session.exec(select(PasskeyCredential.name).where(PasskeyCredential.user_id == member.user.id)))


def kinds(engine: Engine) -> list[str]:
    with open_session(engine) as session:
        return list(session.exec(select(SecurityEvent.kind).order_by(col(SecurityEvent.id))))


def challenges(engine: Engine) -> int:
    with open_session(engine) as session:
        return session.exec(select(func.count()).select_from(WebAuthnChallenge)).one()


@pytest.mark.parametrize("headers", [{}, HTMX])
def test_add_passkey_requires_step_up(auth: Auth, member: Member, engine: Engine, headers: dict[str, str]) -> None:
    auth.login(member)
    auth.age_sessions(3600)
    before = challenges(engine)
    response = auth.post("/settings/mfa/passkeys/new", page="/settings/mfa/passkeys", headers=headers)
    assert response.status_code == 200 and "Confirm it" in response.text
    assert (response.headers.get("HX-Retarget") == "#modal") == bool(headers)
    assert challenges(engine) == before  # no creation options before the check


def test_add_passkey_without_csrf_token(client: TestClient, auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    assert client.post("/settings/mfa/passkeys/new").status_code == 403


@pytest.mark.parametrize("headers", [{}, HTMX])
def test_add_passkey(auth: Auth, member: Member, engine: Engine, client: TestClient, headers: dict[str, str]) -> None:
    auth.login(member)
    page = "/settings/mfa/passkeys"
    started = auth.post("/settings/mfa/passkeys/new", page=page, headers=HTMX)
    assert 'id="passkey-creation-options"' in started.text and 'data-passkey="register"' in started.text
    answer_with(engine, REGISTRATION_NONE)
    chrome = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/140.0 Safari/537.36"}
    added = auth.post(page, {"credential": REGISTRATION_NONE.response}, page=page, headers=headers | chrome)
    if not headers:
        assert added.status_code == 303 and "status=added" in added.headers["location"]
        added = client.get(added.headers["location"])
    assert added.status_code == 200 and 'value="Chrome on Linux"' in added.text  # named after the browser
    assert "Passkey name" in added.text and ">Save</button>" in added.text
    assert len(passkeys_of(engine, member)) == 1 and "passkey_added" in kinds(engine)
    assert auth.post("/settings/mfa/passkeys", {"credential": REGISTRATION_NONE.response}, page=page).status_code == 422


def test_add_passkey_ends_other_sessions(auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    with open_session(engine) as session:
        session.add(AuthSession(token_hash="x" * 64, user_id=member.user.id or 0))
        session.commit()
    auth.post("/settings/mfa/passkeys/new", page="/settings/mfa/passkeys")
    answer_with(engine, REGISTRATION_NONE)
    auth.post("/settings/mfa/passkeys", {"credential": REGISTRATION_NONE.response}, page="/settings/mfa/passkeys")
    with open_session(engine) as session:
        assert session.exec(select(func.count()).select_from(AuthSession)).one() == 1


def test_add_passkey_with_a_replayed_challenge(auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    page = "/settings/mfa/passkeys"
    auth.post("/settings/mfa/passkeys/new", page=page)
    answer_with(engine, REGISTRATION_NONE)
    first = auth.post(page, {"credential": "{}"}, page=page, headers=HTMX)
    assert first.status_code == 422
    again = auth.post(page, {"credential": REGISTRATION_NONE.response}, page=page, headers=HTMX)
    assert again.status_code == 422 and passkeys_of(engine, member) == []


def test_rename_passkey(auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    key = store(engine, ASSERTION_EC2, member)
    page = f"/settings/mfa/passkeys?rename={key}"
    assert 'value="Work laptop"' in auth.client.get(page).text
    bad = auth.post(f"/settings/mfa/passkeys/{key}/rename", {"passkey_name": " "}, page=page, headers=HTMX)
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
    good = auth.post(f"/settings/mfa/passkeys/{key}/rename", {"passkey_name": "Phone"}, page=page, headers=HTMX)
    assert good.status_code == 200 and passkeys_of(engine, member) == ["Phone"]


@pytest.mark.parametrize("headers", [{}, HTMX])
def test_remove_passkey_requires_step_up(auth: Auth, member: Member, engine: Engine, headers: dict[str, str]) -> None:
    auth.login(member)
    key = store(engine, ASSERTION_EC2, member)
    auth.age_sessions(3600)
    response = auth.post(f"/settings/mfa/passkeys/{key}/remove", page="/settings/mfa/passkeys", headers=headers)
    assert "Confirm it" in response.text and passkeys_of(engine, member) == ["Work laptop"]


def test_remove_passkey_of_another_member(auth: Auth, member: Member, admin: Member, engine: Engine) -> None:
    key = store(engine, ASSERTION_EC2, admin)
    auth.login(member)
    response = auth.post(f"/settings/mfa/passkeys/{key}/remove", page="/settings/mfa/passkeys", headers=HTMX)
    assert response.status_code == 404 and passkeys_of(engine, admin) == ["Work laptop"]


def test_sign_in_with_a_passkey(auth: Auth, member: Member, engine: Engine, client: TestClient) -> None:
    store(engine, ASSERTION_RSA_UV, member)
    assert "Sign in with a passkey" in client.get("/login").text
    body = {"credential": ASSERTION_RSA_UV.response, "next": "/settings"}
    response = answer(auth, ASSERTION_RSA_UV, "/login/passkey", body, page="/login")
    assert response.status_code == 303 and response.headers["location"] == "/settings"
    assert client.get("/settings").status_code == 200
    assert "sign_in" in kinds(engine)


def test_sign_in_with_a_passkey_asks_the_checkup_when_due(auth: Auth, member: Member, engine: Engine) -> None:
    """CHECKUP_DAYS (28) after the first passkey, a passwordless sign-in asks the check-up first, as the
    second step does (before that it goes straight on: test_sign_in_with_a_passkey)."""
    store(engine, ASSERTION_RSA_UV, member)
    body = {"credential": ASSERTION_RSA_UV.response, "next": "/settings"}
    with open_session(engine) as session:
        for row in session.exec(select(PasskeyCredential)):
            row.created_at -= timedelta(days=29)
            session.add(row)
        session.commit()
    response = answer(auth, ASSERTION_RSA_UV, "/login/passkey", body, page="/login")
    assert response.status_code == 303
    assert response.headers["location"] == "/settings/mfa/checkup?next=/settings"
    assert auth.client.get("/settings/mfa/checkup?next=/settings").status_code == 200


def test_sign_in_with_a_removed_passkey_reads_like_a_wrong_password(
    auth: Auth, member: Member, engine: Engine, client: TestClient
) -> None:
    auth.login(member)
    key = store(engine, ASSERTION_RSA_UV, member)
    auth.post(f"/settings/mfa/passkeys/{key}/remove", page="/settings/mfa/passkeys")
    assert passkeys_of(engine, member) == []
    auth.logout()
    response = answer(
        auth, ASSERTION_RSA_UV, "/login/passkey", {"credential": ASSERTION_RSA_UV.response}, page="/login"
    )
    assert response.status_code == 422 and WRONG_PASSWORD in response.text
    assert client.get("/settings").status_code == 303


def test_sign_in_with_a_passkey_without_user_verification(
    auth: Auth, member: Member, engine: Engine, client: TestClient
) -> None:
    store(engine, ASSERTION_NO_UV, member)
    response = answer(auth, ASSERTION_NO_UV, "/login/passkey", {"credential": ASSERTION_NO_UV.response}, page="/login")
    assert response.status_code == 422 and WRONG_PASSWORD in response.text
    with open_session(engine) as session:  # the account is known now: the failure counts against it
        assert session.get(Throttle, user_key(member.user.id or 0)).failures == 1  # type: ignore[union-attr]


def test_second_step_with_a_passkey(auth: Auth, member: Member, engine: Engine, client: TestClient) -> None:
    store(engine, ASSERTION_EC2, member)
    assert auth.password(member).headers["location"].startswith("/login/verify")
    page = client.get("/login/verify").text
    assert "Use a passkey" in page and "Backup code" in page  # no authenticator app: backup codes only
    body = {"method": "passkey", "credential": ASSERTION_EC2.response, "next": "/"}
    response = answer(auth, ASSERTION_EC2, "/login/verify", body, page="/login/verify")
    assert response.status_code == 303 and client.get("/settings").status_code == 200


def test_second_step_passkey_failures_share_the_account_throttle(
    auth: Auth, member_with_totp: Member, engine: Engine, client: TestClient
) -> None:
    store(engine, ASSERTION_EC2, member_with_totp, count=500)  # a counter gone back: a possible clone
    auth.password(member_with_totp)
    body = {"method": "passkey", "credential": ASSERTION_EC2.response}
    assert answer(auth, ASSERTION_EC2, "/login/verify", body, page="/login/verify").status_code == 422
    wrong = auth.post("/login/verify", {"code": "000000"}, page="/login/verify")
    assert wrong.status_code == 422
    with open_session(engine) as session:
        assert session.get(Throttle, user_key(member_with_totp.user.id or 0)).failures == 2  # type: ignore[union-attr]
    assert "passkey_clone_suspected" in kinds(engine)


def test_step_up_with_a_passkey_resumes(auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    store(engine, ASSERTION_EC2, member)
    auth.age_sessions(3600)
    dialog = auth.post("/settings/mfa/passkeys/new", page="/settings/mfa/passkeys", headers=HTMX)
    assert "Use a passkey" in dialog.text
    answer_with(engine, ASSERTION_EC2)
    body = {
        "reauth_factor": "passkey",
        "reauth_credential": ASSERTION_EC2.response,
        "reauth_method": "POST",
        "reauth_next": "/settings/mfa/passkeys/new",
    }
    response = auth.post("/reauth", body, page="/settings", headers=HTMX)
    assert response.status_code == 307 and response.headers["location"] == "/settings/mfa/passkeys/new"
    again = auth.post("/reauth", body, page="/settings", headers=HTMX)  # the same answer twice: refused
    assert again.status_code == 422 and REJECTED in again.text


def test_reset_mfa_removes_passkeys(member: Member, engine: Engine) -> None:
    store(engine, ASSERTION_EC2, member)
    with open_session(engine) as session:
        mfa.reset_mfa(session, user=member.user, actor=OPERATOR, reason="lost")
    assert passkeys_of(engine, member) == []

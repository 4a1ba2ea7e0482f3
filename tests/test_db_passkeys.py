"""The passkey services against py_webauthn's recorded responses, on SQLite and on PostgreSQL.

A recorded response answers one exact challenge, so each test stores that challenge behind a fresh handle, as
the options functions do for a real browser, and then finishes the ceremony through the service under test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select
from webauthn.helpers import base64url_to_bytes

from db.clock import now
from db.engine import open_session
from db.factors import challenges, passkeys
from db.models import PasskeyCredential, User, WebAuthnChallenge
from tests.passkey_vectors import (
    ASSERTION_EC2,
    ASSERTION_NO_UV,
    ASSERTION_RSA_UV,
    PUBLIC_URL,
    REGISTRATION_NONE,
    Vector,
)

RP_ID, ORIGIN = passkeys.relying_party(PUBLIC_URL)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with open_session(engine) as session:
        yield session


def _user(session: Session, email: str) -> User:
    user = User(email=email, role="agent")
    session.add(user)
    session.commit()
    return user


@pytest.fixture
def alice(session: Session) -> User:
    return _user(session, "alice@example.com")


@pytest.fixture
def bob(session: Session) -> User:
    return _user(session, "bob@example.com")


def _challenge(session: Session, vector: Vector, *, purpose: str, user: User | None) -> str:
    handle, _ = challenges.issue(
        session,
        purpose=purpose,
        user_id=user.id if user else None,
        user_handle="dXNlci1oYW5kbGU",
        challenge=base64url_to_bytes(vector.challenge),
    )
    session.commit()
    return handle


def _stored(session: Session, vector: Vector, *, owner: User, count: int | None = None) -> PasskeyCredential:
    row = PasskeyCredential(
        user_id=owner.id or 0,
        credential_id=vector.credential_id,
        user_handle=vector.user_handle or "b3duZXI",
        public_key=base64url_to_bytes(vector.public_key),
        sign_count=vector.stored_count if count is None else count,
        name="Work laptop",
    )
    session.add(row)
    session.commit()
    return row


def _register(session: Session, user: User, handle: str, *, origin: str = ORIGIN, name: str = "") -> PasskeyCredential:
    return passkeys.register(
        session,
        user=user,
        handle=handle,
        response_json=REGISTRATION_NONE.response,
        name=name,
        rp_id=RP_ID,
        origin=origin,
    )


def _assert(
    session: Session,
    vector: Vector,
    handle: str,
    *,
    user: User | None,
    purpose: str = "second_step",
    origin: str = ORIGIN,
    require_uv: bool = False,
) -> tuple[int, PasskeyCredential]:
    return passkeys.verify_assertion(
        session,
        user=user,
        purpose=purpose,
        handle=handle,
        response_json=vector.response,
        rp_id=RP_ID,
        origin=origin,
        require_uv=require_uv,
    )


def test_register_with_a_recorded_response(session: Session, alice: User) -> None:
    row = _register(session, alice, _challenge(session, REGISTRATION_NONE, purpose="register", user=alice))
    assert (row.user_id, row.credential_id, row.sign_count) == (alice.id, REGISTRATION_NONE.credential_id, 23)
    assert row.public_key == base64url_to_bytes(REGISTRATION_NONE.public_key)
    assert (row.transports, row.aaguid, row.name) == ("nfc,usb", "00000000-0000-0000-0000-000000000000", "Passkey")
    assert row.user_handle == "dXNlci1oYW5kbGU"
    assert passkeys.count_passkeys(session, user_id=alice.id or 0) == 1


def test_register_keeps_the_name_given(session: Session, alice: User) -> None:
    row = _register(
        session, alice, _challenge(session, REGISTRATION_NONE, purpose="register", user=alice), name=" Key "
    )
    assert row.name == "Key"


def test_register_a_credential_another_member_has(session: Session, alice: User, bob: User) -> None:
    _stored(session, REGISTRATION_NONE, owner=bob)
    with pytest.raises(passkeys.RegistrationFailed) as refused:
        _register(session, alice, _challenge(session, REGISTRATION_NONE, purpose="register", user=alice))
    assert refused.value.reason == "credential_exists"
    assert passkeys.count_passkeys(session, user_id=alice.id or 0) == 0


def test_register_twice_with_one_challenge(session: Session, alice: User) -> None:
    handle = _challenge(session, REGISTRATION_NONE, purpose="register", user=alice)
    _register(session, alice, handle)
    with pytest.raises(passkeys.RegistrationFailed) as refused:
        _register(session, alice, handle)
    assert refused.value.reason == "challenge"


def test_register_with_a_wrong_origin(session: Session, alice: User) -> None:
    handle = _challenge(session, REGISTRATION_NONE, purpose="register", user=alice)
    with pytest.raises(passkeys.RegistrationFailed) as refused:
        _register(session, alice, handle, origin="https://localhost:5000")
    assert "origin" in refused.value.detail
    assert passkeys.count_passkeys(session, user_id=alice.id or 0) == 0


def test_register_with_another_members_challenge(session: Session, alice: User, bob: User) -> None:
    handle = _challenge(session, REGISTRATION_NONE, purpose="register", user=bob)
    with pytest.raises(passkeys.RegistrationFailed):
        _register(session, alice, handle)


def test_verify_assertion_as_second_step(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_EC2, owner=alice)
    user_id, row = _assert(
        session, ASSERTION_EC2, _challenge(session, ASSERTION_EC2, purpose="second_step", user=alice), user=alice
    )
    assert (user_id, row.sign_count) == (alice.id, 78)
    assert row.last_used_at is not None


def test_verify_assertion_signs_in_without_an_email(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_RSA_UV, owner=alice)
    handle = _challenge(session, ASSERTION_RSA_UV, purpose="sign_in", user=None)
    user_id, row = _assert(session, ASSERTION_RSA_UV, handle, user=None, purpose="sign_in")
    assert (user_id, row.sign_count) == (alice.id, 1)


def test_verify_assertion_with_a_replayed_challenge(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_EC2, owner=alice, count=0)
    handle = _challenge(session, ASSERTION_EC2, purpose="second_step", user=alice)
    _assert(session, ASSERTION_EC2, handle, user=alice)
    with pytest.raises(passkeys.PasskeyRejected) as refused:
        _assert(session, ASSERTION_EC2, handle, user=alice)
    assert refused.value.reason == "challenge"


def test_verify_assertion_with_an_expired_challenge(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_EC2, owner=alice)
    handle = _challenge(session, ASSERTION_EC2, purpose="second_step", user=alice)
    session.execute(update(WebAuthnChallenge).values(expires_at=now() - timedelta(seconds=1)))
    session.commit()
    with pytest.raises(passkeys.PasskeyRejected) as refused:
        _assert(session, ASSERTION_EC2, handle, user=alice)
    assert refused.value.reason == "challenge"


def test_challenge_expires_after_five_minutes(session: Session, alice: User) -> None:
    _challenge(session, ASSERTION_EC2, purpose="second_step", user=alice)
    row = session.exec(select(WebAuthnChallenge)).one()
    assert timedelta(minutes=4, seconds=59) < row.expires_at - now() <= timedelta(minutes=5)


@pytest.mark.parametrize("purpose", ["step_up", "sign_in"])
def test_verify_assertion_with_a_challenge_for_another_purpose(session: Session, alice: User, purpose: str) -> None:
    _stored(session, ASSERTION_EC2, owner=alice)
    handle = _challenge(session, ASSERTION_EC2, purpose=purpose, user=alice)
    with pytest.raises(passkeys.PasskeyRejected):
        _assert(session, ASSERTION_EC2, handle, user=alice)


def test_verify_assertion_with_a_counter_gone_back(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_EC2, owner=alice, count=100)
    handle = _challenge(session, ASSERTION_EC2, purpose="second_step", user=alice)
    with pytest.raises(passkeys.PasskeyRejected) as refused:
        _assert(session, ASSERTION_EC2, handle, user=alice)
    assert refused.value.reason == "passkey_clone_suspected" and refused.value.clone_suspected
    assert refused.value.user_id == alice.id
    assert session.exec(select(PasskeyCredential.sign_count)).one() == 100


def test_verify_assertion_with_the_same_counter(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_EC2, owner=alice, count=78)
    with pytest.raises(passkeys.PasskeyRejected) as refused:
        _assert(
            session, ASSERTION_EC2, _challenge(session, ASSERTION_EC2, purpose="second_step", user=alice), user=alice
        )
    assert refused.value.clone_suspected


def test_verify_assertion_with_another_members_credential(session: Session, alice: User, bob: User) -> None:
    _stored(session, ASSERTION_EC2, owner=bob)
    handle = _challenge(session, ASSERTION_EC2, purpose="second_step", user=alice)
    with pytest.raises(passkeys.PasskeyRejected) as refused:
        _assert(session, ASSERTION_EC2, handle, user=alice)
    assert refused.value.reason == "unknown_credential"


def test_verify_assertion_with_a_removed_credential(session: Session, alice: User) -> None:
    row = _stored(session, ASSERTION_RSA_UV, owner=alice)
    passkeys.remove_passkey(session, user_id=alice.id or 0, passkey_id=row.id or 0)
    handle = _challenge(session, ASSERTION_RSA_UV, purpose="sign_in", user=None)
    with pytest.raises(passkeys.PasskeyRejected) as refused:
        _assert(session, ASSERTION_RSA_UV, handle, user=None, purpose="sign_in")
    assert refused.value.reason == "unknown_credential" and refused.value.user_id is None
    assert refused.value.message == passkeys.PasskeyRejected.message


def test_verify_assertion_with_a_wrong_origin(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_EC2, owner=alice)
    handle = _challenge(session, ASSERTION_EC2, purpose="second_step", user=alice)
    with pytest.raises(passkeys.PasskeyRejected) as refused:
        _assert(session, ASSERTION_EC2, handle, user=alice, origin="https://evil.example")
    assert refused.value.reason == "wrong_origin"
    assert session.exec(select(PasskeyCredential.sign_count)).one() == 77


def test_verify_assertion_requiring_uv_without_it(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_NO_UV, owner=alice)
    handle = _challenge(session, ASSERTION_NO_UV, purpose="step_up", user=alice)
    with pytest.raises(passkeys.PasskeyRejected) as refused:
        _assert(session, ASSERTION_NO_UV, handle, user=alice, purpose="step_up", require_uv=True)
    assert refused.value.reason == "uv_missing"


def test_sign_in_without_uv_is_refused_whatever_the_caller_asks(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_NO_UV, owner=alice)
    handle = _challenge(session, ASSERTION_NO_UV, purpose="sign_in", user=None)
    with pytest.raises(passkeys.PasskeyRejected) as refused:
        _assert(session, ASSERTION_NO_UV, handle, user=None, purpose="sign_in", require_uv=False)
    assert refused.value.reason == "uv_missing"


def test_sign_in_with_a_user_handle_of_someone_else(session: Session, alice: User) -> None:
    row = _stored(session, ASSERTION_RSA_UV, owner=alice)
    row.user_handle = "b3RoZXI"
    session.add(row)
    session.commit()
    handle = _challenge(session, ASSERTION_RSA_UV, purpose="sign_in", user=None)
    with pytest.raises(passkeys.PasskeyRejected) as refused:
        _assert(session, ASSERTION_RSA_UV, handle, user=None, purpose="sign_in")
    assert refused.value.reason == "user_handle_mismatch"


def test_a_challenge_is_taken_once_across_sessions(engine: Engine, session: Session, alice: User) -> None:
    handle = _challenge(session, ASSERTION_EC2, purpose="step_up", user=alice)
    with open_session(engine) as one, open_session(engine) as two:
        first = challenges.take(one, handle=handle, purpose="step_up", user_id=alice.id)
        second = challenges.take(two, handle=handle, purpose="step_up", user_id=alice.id)
    assert first is not None and first.challenge == base64url_to_bytes(ASSERTION_EC2.challenge)
    assert second is None


def test_registration_options(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_EC2, owner=alice)
    options_json, handle = passkeys.registration_options(session, user=alice, rp_id=RP_ID, rp_name="Chat360")
    options = json.loads(options_json)
    assert options["rp"] == {"name": "Chat360", "id": "localhost"}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert [c["id"] for c in options["excludeCredentials"]] == [ASSERTION_EC2.credential_id]
    assert (options["timeout"], options["attestation"]) == (300000, "none")
    assert options["user"]["id"] == "b3duZXI"  # the handle her passkeys already share
    taken = challenges.take(session, handle=handle, purpose="register", user_id=alice.id)
    assert taken is not None and taken.challenge == base64url_to_bytes(options["challenge"])


def test_authentication_options_for_a_member(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_EC2, owner=alice)
    options_json, _ = passkeys.authentication_options(session, user=alice, purpose="second_step", rp_id=RP_ID)
    options = json.loads(options_json)
    assert [c["id"] for c in options["allowCredentials"]] == [ASSERTION_EC2.credential_id]
    assert (options["userVerification"], options["rpId"]) == ("preferred", "localhost")


def test_authentication_options_for_sign_in(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_EC2, owner=alice)
    options = json.loads(passkeys.authentication_options(session, user=None, purpose="sign_in", rp_id=RP_ID)[0])
    assert (options["allowCredentials"], options["userVerification"]) == ([], "required")


@pytest.mark.parametrize("bad", ["", "   ", "x" * 65, "line\nbreak", "tab\there", "evil\u202etxt.exe"])
def test_rename_passkey_with_a_bad_name(session: Session, alice: User, bad: str) -> None:
    row = _stored(session, ASSERTION_EC2, owner=alice)
    with pytest.raises(passkeys.InvalidPasskeyName):
        passkeys.rename_passkey(session, user_id=alice.id or 0, passkey_id=row.id or 0, name=bad)


def test_rename_and_remove_only_own_passkeys(session: Session, alice: User, bob: User) -> None:
    row = _stored(session, ASSERTION_EC2, owner=alice)
    assert (
        passkeys.rename_passkey(session, user_id=alice.id or 0, passkey_id=row.id or 0, name="Phone 📱").name
        == "Phone 📱"
    )
    with pytest.raises(passkeys.PasskeyNotFound):
        passkeys.rename_passkey(session, user_id=bob.id or 0, passkey_id=row.id or 0, name="Mine")
    with pytest.raises(passkeys.PasskeyNotFound):
        passkeys.remove_passkey(session, user_id=bob.id or 0, passkey_id=row.id or 0)
    assert [p.name for p in passkeys.list_passkeys(session, user_id=alice.id or 0)] == ["Phone 📱"]


def test_remove_all(session: Session, alice: User, bob: User) -> None:
    _stored(session, ASSERTION_EC2, owner=alice)
    _stored(session, ASSERTION_RSA_UV, owner=alice)
    _stored(session, ASSERTION_NO_UV, owner=bob)
    assert passkeys.remove_all(session, alice.id or 0) == 2
    session.commit()
    assert passkeys.count_passkeys(session, user_id=alice.id or 0) == 0
    assert passkeys.count_passkeys(session, user_id=bob.id or 0) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:8000", ("localhost", "http://localhost:8000")),
        ("https://Chat.Example.com/", ("chat.example.com", "https://chat.example.com")),
        ("https://chat.example.com:443/app", ("chat.example.com", "https://chat.example.com")),
        ("https://chat.example.com:8443", ("chat.example.com", "https://chat.example.com:8443")),
    ],
)
def test_relying_party(url: str, expected: tuple[str, str]) -> None:
    assert passkeys.relying_party(url) == expected


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "https://[::1]/", "ftp://example.com", "localhost:8000"])
def test_relying_party_refuses(url: str) -> None:
    with pytest.raises(ValueError):
        passkeys.relying_party(url)


def test_user_deleted_takes_passkeys_and_challenges(session: Session, alice: User) -> None:
    _stored(session, ASSERTION_EC2, owner=alice)
    _challenge(session, ASSERTION_EC2, purpose="step_up", user=alice)
    session.delete(alice)
    session.commit()
    assert session.exec(select(PasskeyCredential)).all() == []
    assert session.exec(select(WebAuthnChallenge).where(col(WebAuthnChallenge.user_id).is_not(None))).all() == []


def test_housekeeping_purges_expired_challenges_and_keeps_live_ones(session: Session, alice: User) -> None:
    expired = _challenge(session, ASSERTION_EC2, purpose="second_step", user=alice)
    live = _challenge(session, ASSERTION_EC2, purpose="second_step", user=alice)
    digest = challenges._digest(expired)
    session.execute(
        update(WebAuthnChallenge).where(col(WebAuthnChallenge.handle_hash) == digest).values(expires_at=now())
    )
    session.commit()
    assert challenges.purge(session) == 1
    left = session.exec(select(WebAuthnChallenge.handle_hash)).all()
    assert left == [challenges._digest(live)]

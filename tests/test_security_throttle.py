"""Throttling (security requirements 13, 14, 19 and issue #4 item 1): failures of the password, authenticator
codes, backup codes and step-up are counted in the database per account and per client address, back off
from 30 s doubling after 5 free tries, lock the second factor for good at 20 until an admin lifts it, tell the
member when to retry, are logged, and are forgotten on success."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import Engine
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from db import throttle
from db.engine import open_session
from db.models import SecurityEvent, Throttle
from tests.conftest import Auth, Member, csrf_of

RETRY = re.compile(r"Try again in (\d+) seconds")
LOCKED = "are blocked until"


class FakeNow:
    """The throttle's clock, so back-off periods of minutes to hours pass without waiting."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def throttle_now(monkeypatch: pytest.MonkeyPatch) -> FakeNow:
    fake = FakeNow()
    monkeypatch.setattr(throttle, "utcnow", fake)
    return fake


def wrong_code(member: Member) -> str:
    """A well-formed code that matches no step in the accepted window."""
    secret = member.secret or ""
    window = {pyotp.TOTP(secret).at(int(member.clock()) + 30 * k) for k in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222") if c not in window)


def wrong_backup(member: Member) -> str:
    return "ABCD-EFGH-JKMN-PQRS" if "ABCD-EFGH-JKMN-PQRS" not in (member.codes or []) else "ZZZZ-ZZZZ-ZZZZ-ZZZZ"


def verify(auth: Auth, code: str, *, backup: bool = False) -> object:
    data = {"method": "backup", "backup_code": code} if backup else {"code": code}
    return auth.post("/login/verify", data, page="/login/verify")


def retry_after(response: object) -> int:
    assert response.status_code == 429, response.text  # type: ignore[attr-defined]
    match = RETRY.search(response.text)  # type: ignore[attr-defined]
    assert match, "the member is not told when to try again"
    return int(match.group(1))


def failures(engine: Engine, key: str) -> int:
    with open_session(engine) as session:
        row = session.get(Throttle, key)
        return row.failures if row else 0


def events(engine: Engine, kind: str) -> list[SecurityEvent]:
    with open_session(engine) as session:
        return list(session.exec(select(SecurityEvent).where(SecurityEvent.kind == kind)))


@pytest.fixture
def elsewhere(app: Starlette, auth: Auth, engine: Engine) -> Iterator[Auth]:
    """A fresh cookie jar from another client address."""
    with TestClient(app, base_url="https://testserver", follow_redirects=False, client=("203.0.113.7", 4444)) as c:
        yield Auth(c, engine, auth.settings)


def test_sixth_code_is_refused_even_when_correct(
    auth: Auth, elsewhere: Auth, member_with_totp: Member, engine: Engine
) -> None:
    """Rule 13: after 5 wrong codes the 6th is refused although correct (429, with the wait in seconds); a
    fresh cookie jar from another address that gives the password again is still throttled; a "throttled"
    event is logged."""
    member = member_with_totp
    auth.password(member)
    for _ in range(5):
        response = verify(auth, wrong_code(member))
        assert response.status_code == 422 and "Incorrect code" in response.text
    response = verify(auth, member.fresh_code())
    assert 1 <= retry_after(response) <= 30
    assert auth.client.get("/settings").headers["location"] == "/login/verify"

    assert elsewhere.password(member).headers["location"].startswith("/login/verify")
    response = verify(elsewhere, member.fresh_code())
    assert 1 <= retry_after(response) <= 30
    assert elsewhere.client.get("/settings").status_code == 303
    assert [e.target_id for e in events(engine, "throttled")][:1] == [member.user.id]


def test_backoff_doubles_then_locks_until_an_admin_lifts_it(
    auth: Auth, elsewhere: Auth, member_with_totp: Member, engine: Engine, throttle_now: FakeNow
) -> None:
    """Rules 13 and 46: 5 free failures, then waits of 30 s doubling (capped at an hour), a hard lock of the
    authenticator at 20 failures that outlasts the backoff, shown to admins on the Team page; "Unlock" lifts
    it and the right code then works."""
    member = member_with_totp
    admin = elsewhere.create("admin@example.com", "admin")
    elsewhere.login(admin)
    auth.password(member)
    key = throttle.user_key(member.user.id or 0)
    waits = []
    for n in range(1, 21):
        assert verify(auth, wrong_code(member)).status_code == 422, f"failure {n} was not checked"
        assert failures(engine, key) == n
        if 5 <= n < 20:
            waits.append(retry_after(verify(auth, wrong_code(member))))
            assert failures(engine, key) == n, "an attempt refused while waiting still counted"
            throttle_now.advance(waits[-1] + 1)
    assert waits == [30, 60, 120, 240, 480, 960, 1920] + [3600] * 8
    response = verify(auth, member.fresh_code())
    assert response.status_code == 429 and LOCKED in response.text
    throttle_now.advance(3600 + 1)  # past the longest wait: the authenticator stays locked
    response = verify(auth, member.fresh_code())
    assert response.status_code == 429 and LOCKED in response.text

    team = elsewhere.client.get("/team").text
    row = team[team.index(member.email) :]
    assert "Locked until" in row[: row.index("</tr>")]
    unlock = elsewhere.post(f"/team/{member.user.id}/unlock", page="/team")
    assert unlock.status_code == 303
    assert events(engine, "throttle_lifted")
    response = verify(auth, member.fresh_code())
    assert response.status_code == 303


def test_hard_lock_lets_a_backup_code_in_and_expires(
    auth: Auth, member_with_totp: Member, engine: Engine, throttle_now: FakeNow
) -> None:
    """Rule 46: at the hard limit the authenticator is refused, but the owner's backup code still works
    (behind the backoff); a hard lock left alone ends after a day, and its end is in the log."""
    member = member_with_totp
    assert member.codes
    auth.password(member)
    key = throttle.user_key(member.user.id or 0)
    for _ in range(20):
        verify(auth, wrong_code(member))
        throttle_now.advance(3601)
    assert failures(engine, key) == 20
    assert verify(auth, member.fresh_code()).status_code == 429
    assert verify(auth, member.codes[0], backup=True).status_code == 303, "the backup code was refused"
    auth.logout()

    auth.password(member)
    for _ in range(20):
        verify(auth, wrong_code(member))
        throttle_now.advance(3601)
    locked = verify(auth, member.fresh_code())
    assert locked.status_code == 429 and LOCKED in locked.text
    assert any("locked until" in e.detail for e in events(engine, "throttled"))
    throttle_now.advance(86400 + 1)
    assert verify(auth, member.fresh_code()).status_code == 303, "the hard lock never expired"


def test_success_resets_the_counter(auth: Auth, member_with_totp: Member) -> None:
    """Rule 13: consecutive failures only; a success forgets them (4 + 4 wrong never reach the limit)."""
    member = member_with_totp
    for _ in range(2):
        auth.password(member)
        for _ in range(4):
            assert verify(auth, wrong_code(member)).status_code == 422
        assert verify(auth, member.fresh_code()).status_code == 303
        auth.logout()


@pytest.mark.parametrize("first", ["totp", "backup"])
def test_authenticator_and_backup_failures_share_one_counter(
    auth: Auth, member_with_totp: Member, engine: Engine, throttle_now: FakeNow, first: str
) -> None:
    """Rules 13 and 19: 3 wrong authenticator codes and 3 wrong backup codes are 6 failures of one counter:
    after the first 5 the 6th is refused even with a right backup code; once the wait passes the 6th counts
    and the counter reads 6."""
    member = member_with_totp
    assert member.codes
    auth.password(member)
    order = [first] * 3 + [("backup" if first == "totp" else "totp")] * 3
    for kind in order[:5]:
        response = verify(
            auth, wrong_backup(member) if kind == "backup" else wrong_code(member), backup=kind == "backup"
        )
        assert response.status_code == 422
    assert retry_after(verify(auth, member.codes[0], backup=True)) == 30
    assert retry_after(verify(auth, member.fresh_code())) == 30
    throttle_now.advance(31)
    kind = order[5]
    response = verify(auth, wrong_backup(member) if kind == "backup" else wrong_code(member), backup=kind == "backup")
    assert response.status_code == 422
    assert failures(engine, throttle.user_key(member.user.id or 0)) == 6
    assert retry_after(verify(auth, member.codes[0], backup=True)) == 60


def test_step_up_failures_count_against_sign_in(auth: Auth, member_with_totp: Member) -> None:
    """Rules 13 and 30: "Confirm it's you" shares the counter: 5 wrong codes there, and then neither step-up
    nor the next sign-in accepts a right code until the wait is over."""
    member = member_with_totp
    auth.login(member)
    fields = {"reauth_factor": "totp", "reauth_method": "GET", "reauth_next": "/settings"}
    for _ in range(5):
        response = auth.post("/reauth", fields | {"reauth_secret": wrong_code(member)}, page="/settings")
        assert response.status_code == 422
    response = auth.post("/reauth", fields | {"reauth_secret": member.fresh_code()}, page="/settings")
    assert 1 <= retry_after(response) <= 30
    auth.logout()
    auth.password(member)
    assert 1 <= retry_after(verify(auth, member.fresh_code())) <= 30


def test_password_failures_throttle_the_account_across_addresses(
    auth: Auth, elsewhere: Auth, member: Member, engine: Engine
) -> None:
    """Rule 14: 5 wrong passwords, then even the right one waits (429 with the time), from any address;
    an admin's Unlock lifts it."""
    for _ in range(5):
        response = auth.post("/login", {"email": member.email, "password": "not the password"})
        assert response.status_code == 422
    assert 1 <= retry_after(auth.password(member)) <= 30
    assert 1 <= retry_after(elsewhere.password(member)) <= 30
    admin = auth.create("admin@example.com", "admin")
    elsewhere.client.cookies.clear()
    elsewhere.login(admin)
    assert elsewhere.post(f"/team/{member.user.id}/unlock", page="/team").status_code == 303
    assert auth.password(member).status_code == 303


def test_password_failures_throttle_the_client_address(
    auth: Auth, elsewhere: Auth, member: Member, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 13 / issue #4: per client address too: as many wrong passwords as the address allows, spread over
    as many emails (none throttled on its own), hold that address back, even for a right password; other
    addresses are unaffected. The address limit is lowered to 12 here to keep the test short."""
    assert throttle.PASSWORD.free < throttle.CLIENT.free <= 200, "the configured address limit is implausible"
    monkeypatch.setattr(throttle, "CLIENT", replace(throttle.CLIENT, free=12))
    token = csrf_of(auth.client.get("/login").text)
    for i in range(12):
        data = {"csrf_token": token, "email": f"guess{i}@example.com", "password": "not the password"}
        assert auth.client.post("/login", data=data).status_code == 422, i
    assert failures(engine, throttle.client_key("testclient")) == 12
    assert 1 <= retry_after(auth.password(member)) <= throttle.CLIENT.base
    assert elsewhere.password(member).status_code == 303


def mask(html: str, email: str) -> tuple[str, list[int]]:
    """The page with what legitimately differs blanked out: the CSRF token, the echoed email, the wait."""
    html = html.replace(csrf_of(html), "TOKEN").replace(email, "EMAIL")
    html = re.sub(r'"challenge": "[A-Za-z0-9_-]+"', '"challenge": ""', html)  # each page's passkey challenge
    waits = [int(n) for n in RETRY.findall(html)]
    return RETRY.sub("Try again in N seconds", html), waits


def test_unknown_and_real_email_answer_alike(auth: Auth, member: Member, elsewhere: Auth) -> None:
    """Rules 14 and 32: 20 wrong passwords for a real email and for an unknown one give the same statuses and
    the same page (apart from the CSRF token and the echoed address), throttle included."""
    unknown = "nobody-here@example.com"
    real_statuses, unknown_statuses = [], []
    for i in range(20):
        real = auth.post("/login", {"email": member.email, "password": "wrong password " + str(i)})
        fake = elsewhere.post("/login", {"email": unknown, "password": "wrong password " + str(i)})
        real_statuses.append(real.status_code)
        unknown_statuses.append(fake.status_code)
        real_page, real_waits = mask(real.text, member.email)
        fake_page, fake_waits = mask(fake.text, unknown)
        assert real_page == fake_page, f"attempt {i + 1}"
        assert all(abs(a - b) <= 1 for a, b in zip(real_waits, fake_waits, strict=True)), (real_waits, fake_waits)
        assert real.headers.get("set-cookie") is None and fake.headers.get("set-cookie") is None
    assert real_statuses == unknown_statuses
    assert real_statuses[:5] == [422] * 5 and set(real_statuses[5:]) == {429}


def test_a_success_on_another_account_does_not_reset_the_address_counter(
    auth: Auth, member: Member, engine: Engine, throttle_now: FakeNow
) -> None:
    """Rule 13 / issue #4 ("per client IP"): the address counter counts guesses against any account; the
    attacker's own valid sign-in between rounds must not wipe it (else it never triggers). An hour without
    attempts does start it again (an office behind one NAT is not held back forever)."""
    insider = auth.create("insider@example.com")
    key = throttle.client_key("testclient")
    for round_ in range(2):
        for i in range(10):
            response = auth.post("/login", {"email": f"guess{round_}-{i}@example.com", "password": "not it"})
            assert response.status_code == 422
        auth.login(insider)
        auth.logout()
    assert failures(engine, key) >= 20, "a success wiped the address's count"
    throttle_now.advance(3601)
    assert auth.post("/login", {"email": "late@example.com", "password": "not it"}).status_code == 422
    assert failures(engine, key) == 1


def test_successful_sign_ins_never_throttle_an_address(
    auth: Auth, member_with_totp: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 14 (no lockout denial of service) and issue #4: the address limit counts failures; members signing
    in successfully from one address (an office) never reach it, however many they are."""
    monkeypatch.setattr(throttle, "CLIENT", replace(throttle.CLIENT, free=3))
    member = member_with_totp
    for i in range(4):
        assert auth.password(member).status_code == 303, i
        assert verify(auth, member.fresh_code()).status_code == 303, i
        auth.logout()


def test_password_throttle_is_logged(auth: Auth, member: Member, engine: Engine) -> None:
    """Issue #4 / rule 38: a throttle trip on the password step leaves a "throttled" event naming the account."""
    for _ in range(5):
        assert auth.post("/login", {"email": member.email, "password": "not the password"}).status_code == 422
    assert auth.password(member).status_code == 429
    logged = events(engine, "throttled")
    assert any(e.target_id == member.user.id or e.target_label == member.email for e in logged), logged


def test_admins_see_a_password_lock(auth: Auth, elsewhere: Auth, member: Member) -> None:
    """Issue #4: admins can see the throttle (password step included) and lift it from the Team page."""
    for _ in range(5):
        assert auth.post("/login", {"email": member.email, "password": "not the password"}).status_code == 422
    assert auth.password(member).status_code == 429
    admin = auth.create("admin@example.com", "admin")
    elsewhere.login(admin)
    team = elsewhere.client.get("/team").text
    row = team[team.index(member.email) :]
    row = row[: row.index("</tr>")]
    assert "Locked until" in row and f"Unlock {member.email}" in row


def test_a_success_forgets_the_account_and_gives_one_back_to_the_address(engine: Engine) -> None:
    """One statement settles both keys: the account's count and lock go, the address gets one attempt back
    (never below zero) and keeps its lock, and other keys are untouched."""
    until = datetime.now(UTC) + timedelta(minutes=5)
    rows = [("mfa:1", 7, until), ("ip:10.0.0.1", 3, until), ("ip:10.0.0.2", 0, None), ("mfa:2", 4, None)]
    with open_session(engine) as session:
        for key, failures, locked in rows:
            session.add(Throttle(key=key, failures=failures, locked_until=locked, updated_at=datetime.now(UTC)))
        session.commit()
        throttle.succeeded(session, "mfa:1", client="ip:10.0.0.1")
        throttle.succeeded(session, "mfa:3", client="ip:10.0.0.2")
        session.commit()
        found = {r.key: (r.failures, r.locked_until is not None) for r in session.exec(select(Throttle))}
    assert found == {"mfa:1": (0, False), "ip:10.0.0.1": (2, True), "ip:10.0.0.2": (0, False), "mfa:2": (4, False)}


def test_a_confirmed_enrolment_gives_the_address_its_attempt_back(auth: Auth, member: Member, engine: Engine) -> None:
    """A hundred agents enrolling from one office address in an hour must not throttle it (CLIENT allows
    100 failures): a right code at enrolment returns its attempt, as a sign-in does."""
    auth.login(member)
    key = throttle.client_key("testclient")
    with open_session(engine) as session:
        row = session.get(Throttle, key)
        assert row is not None
        row.failures = 42
        session.add(row)
        session.commit()
    auth.enable_totp(member)
    with open_session(engine) as session:
        row = session.get(Throttle, key)
        assert row is not None and row.failures == 42

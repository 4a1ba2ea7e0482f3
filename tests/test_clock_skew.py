"""Codes from a clock that is off: refused at the second step, the message says which way and about how
much, and each counts against the second-factor throttle like any wrong code."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from db import throttle
from db.engine import open_session
from db.models import SecurityEvent, Throttle
from tests.conftest import Auth, Member


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        (4, "about 2 minutes ahead"),
        (-4, "about 2 minutes behind"),
        (10, "about 5 minutes ahead"),
        (-10, "about 5 minutes behind"),
    ],
)
def test_second_step_refuses_a_skewed_code_and_says_why(
    auth: Auth, member_with_totp: Member, client: TestClient, steps: int, words: str
) -> None:
    auth.password(member_with_totp)
    response = auth.post("/login/verify", {"code": member_with_totp.code(steps)}, page="/login/verify")
    assert response.status_code == 422
    assert f"your device&#39;s clock seems to be {words}" in response.text
    assert "automatic date and time" in response.text
    assert client.get("/settings").status_code == 303  # not signed in


def test_a_skewed_code_counts_as_a_failure(auth: Auth, member_with_totp: Member, engine: Engine) -> None:
    auth.password(member_with_totp)
    for steps in (4, -10):
        auth.post("/login/verify", {"code": member_with_totp.code(steps)}, page="/login/verify")
    with open_session(engine) as session:
        row = session.get(Throttle, throttle.user_key(member_with_totp.user.id or 0))
        failed = [e for e in session.exec(select(SecurityEvent)) if e.kind == "second_factor_failed"]
    assert row is not None and row.failures == 2
    assert sum(1 + e.repeats for e in failed) == 2  # an anonymous repeat counts on the window's row


def test_a_code_within_the_drift_window_still_works(auth: Auth, member_with_totp: Member) -> None:
    auth.password(member_with_totp)
    member_with_totp.clock.advance()
    response = auth.post("/login/verify", {"code": member_with_totp.code(1)}, page="/login/verify")
    assert response.status_code == 303

"""Security notices: in the app at the next visit, and by mail (a real SMTP server on loopback) or to the
file outbox, for MFA changes, backup code use and failed second-factor attempts."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from sqlalchemy import Engine
from sqlmodel import SQLModel
from starlette.testclient import TestClient

from db.engine import make_engine
from tests.conftest import Auth, Member, make_settings
from web.app import create_app
from web.outbox import deliver_now


class Inbox(Message):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[object] = []

    def handle_message(self, message: object) -> None:
        self.messages.append(message)


@pytest.fixture
def smtp() -> Inbox:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.url = f"smtp+insecure://127.0.0.1:{port}"  # type: ignore[attr-defined]
    yield inbox
    controller.stop()


def test_mfa_change_is_mailed_through_smtp(tmp_path: Path, engine: Engine, clock, smtp: Inbox) -> None:  # noqa: ANN001
    """The worker's own outbox loop mails the notice. It runs beside requests, so it needs a database with a
    connection per thread: a SQLite file here (or the PostgreSQL of the run), not the shared in-memory one."""
    if engine.dialect.name == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'outbox.db'}")
        SQLModel.metadata.create_all(engine)
    settings = make_settings(tmp_path, totp_clock=clock, smtp_url=smtp.url, outbox_interval=0.05)  # type: ignore[attr-defined]
    with TestClient(create_app(settings, engine), base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, settings)
        member = auth.create()
        auth.login(member)
        auth.enable_totp(member)
        deadline = time.monotonic() + 10
        while not smtp.messages and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(smtp.messages) == 1
    message = smtp.messages[0]
    assert message["To"] == member.email  # type: ignore[index]
    body = message.get_payload()  # type: ignore[attr-defined]
    assert "Multi-factor authentication was turned on" in body and "If this wasn't you" in body
    assert member.secret not in body


def test_without_smtp_notices_go_to_the_file_outbox(auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    auth.enable_totp(member)
    assert deliver_now(auth.settings, engine) == 1
    assert deliver_now(auth.settings, engine) == 0  # mailed once
    text = (auth.settings.data_dir / "outbox.txt").read_text()
    assert member.email in text and "turned on" in text


def test_failed_attempts_are_told_at_the_next_sign_in(auth: Auth, member_with_totp: Member, client: TestClient) -> None:
    for _ in range(3):
        auth.password(member_with_totp)
        auth.post("/login/verify", {"code": "000000"}, page="/login/verify")
    auth.login(member_with_totp)
    page = client.get("/").text
    assert "3 failed attempts to verify your identity" in page
    assert "If any of this wasn't you" in page
    auth.post("/notices/dismiss", page="/")
    assert "failed attempts" not in client.get("/").text


def test_backup_code_use_is_told(auth: Auth, member_with_totp: Member, client: TestClient) -> None:
    auth.password(member_with_totp)
    code = (member_with_totp.codes or [])[0]
    auth.post("/login/verify", {"method": "backup", "backup_code": code}, page="/login/verify")
    assert "A backup code was used (9 left)" in client.get("/").text

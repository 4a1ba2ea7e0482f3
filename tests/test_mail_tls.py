"""Security notices go to the relay over verified TLS, and a relay that is down, untrusted or in the clear
keeps them queued, logged and retried with backoff. Real aiosmtpd servers on loopback, certificates from a
trustme CA; time is passed as `at=`, so no test waits for a backoff."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import Engine
from sqlmodel import Session, SQLModel

from db import outbox
from db.clock import now
from db.engine import make_engine, open_session
from db.models import Notice, User
from tests.conftest import PG_URL, make_settings
from web.config import Settings
from web.outbox import deliver_now

PASSWORD = "relay-password-never-logged"


class Inbox:
    """What the relay accepted, with the TLS cipher of the connection it arrived on (None: in the clear)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        cipher = server.transport.get_extra_info("cipher")
        self.messages.append({"to": envelope.rcpt_tos, "body": envelope.content.decode(), "cipher": cipher})
        return "250 OK"


def accept_login(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    return AuthResult(success=auth_data.login == b"notices" and auth_data.password == PASSWORD.encode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    ca.cert_pem.write_to_path(str(tmp_path / "relay-ca.pem"))
    return tmp_path / "relay-ca.pem"


@pytest.fixture
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def relay() -> Iterator[Callable[..., Inbox]]:
    """Starts a relay on a port (a fresh one unless given); stopped at the end of the test."""
    started: list[Controller] = []

    def start(port: int | None = None, **options: Any) -> Inbox:
        inbox = Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port(), **options)
        controller.start()
        started.append(controller)
        inbox.port = controller.port  # type: ignore[attr-defined]
        return inbox

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def notice_id(engine: Engine) -> int:
    return add_notice(engine)


def add_notice(engine: Engine) -> int:
    with open_session(engine) as session:
        user = User(email="ada@example.com", role="agent")
        session.add(user)
        session.commit()
        notice = Notice(user_id=user.id or 0, text="Multi-factor authentication was turned on")
        session.add(notice)
        session.commit()
        return notice.id or 0


def settings_for(tmp_path: Path, url: str, ca_file: Path | None = None) -> Settings:
    return make_settings(tmp_path, smtp_url=url, smtp_ca_file=ca_file)


def stored(engine: Engine, notice_id: int) -> Notice:
    with Session(engine) as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None
        return notice


def test_starttls_notice_arrives_verified_by_the_ca_file(
    tmp_path: Path,
    engine: Engine,
    notice_id: int,
    relay: Callable[..., Inbox],
    server_tls: ssl.SSLContext,
    ca_file: Path,
) -> None:
    inbox = relay(tls_context=server_tls, require_starttls=True, authenticator=accept_login, auth_required=True)
    url = f"smtp://notices:{PASSWORD}@127.0.0.1:{inbox.port}"  # type: ignore[attr-defined]
    assert deliver_now(settings_for(tmp_path, url, ca_file), engine) == 1
    [message] = inbox.messages
    assert message["to"] == ["ada@example.com"] and message["cipher"] is not None
    assert "turned on" in message["body"] and "If this wasn't you" in message["body"]
    assert stored(engine, notice_id).mailed_at is not None
    assert deliver_now(settings_for(tmp_path, url, ca_file), engine) == 0  # mailed once


@pytest.mark.parametrize("trusted", ["another CA", "system CAs only"])
def test_starttls_with_an_untrusted_certificate_stays_queued_and_is_logged(
    trusted: str,
    tmp_path: Path,
    engine: Engine,
    notice_id: int,
    relay: Callable[..., Inbox],
    server_tls: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox = relay(tls_context=server_tls, require_starttls=True)
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    url = f"smtp://notices:{PASSWORD}@127.0.0.1:{inbox.port}"  # type: ignore[attr-defined]
    at = now()
    with caplog.at_level(logging.WARNING, logger="chat360.mail"):
        sent = deliver_now(settings_for(tmp_path, url, other if trusted == "another CA" else None), engine, at=at)
    assert sent == 0 and inbox.messages == []
    notice = stored(engine, notice_id)
    assert (notice.mailed_at, notice.attempts, notice.next_attempt_at) == (None, 1, at + timedelta(seconds=30))
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text and f"notice {notice_id} not mailed" in caplog.text
    assert PASSWORD not in caplog.text


def test_smtps_is_implicit_tls(
    tmp_path: Path,
    engine: Engine,
    notice_id: int,
    relay: Callable[..., Inbox],
    server_tls: ssl.SSLContext,
    ca_file: Path,
) -> None:
    inbox = relay(ssl_context=server_tls)
    url = f"smtps://127.0.0.1:{inbox.port}"  # type: ignore[attr-defined]
    assert deliver_now(settings_for(tmp_path, url, ca_file), engine) == 1
    assert inbox.messages[0]["cipher"] is not None


def test_smtp_is_refused_by_a_relay_without_starttls(
    tmp_path: Path, engine: Engine, notice_id: int, relay: Callable[..., Inbox], caplog: pytest.LogCaptureFixture
) -> None:
    inbox = relay()
    url = f"smtp://127.0.0.1:{inbox.port}"  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger="chat360.mail"):
        assert deliver_now(settings_for(tmp_path, url), engine) == 0
    assert inbox.messages == [] and stored(engine, notice_id).mailed_at is None
    assert "SMTPNotSupportedError" in caplog.text


def test_smtp_insecure_talks_plain_to_a_local_relay(
    tmp_path: Path, engine: Engine, notice_id: int, relay: Callable[..., Inbox]
) -> None:
    inbox = relay()
    url = f"smtp+insecure://127.0.0.1:{inbox.port}"  # type: ignore[attr-defined]
    assert deliver_now(settings_for(tmp_path, url), engine) == 1
    assert inbox.messages[0]["cipher"] is None


def test_relay_down_backs_off_then_mails_exactly_once(
    tmp_path: Path,
    engine: Engine,
    notice_id: int,
    relay: Callable[..., Inbox],
    server_tls: ssl.SSLContext,
    ca_file: Path,
) -> None:
    port = free_port()
    settings = settings_for(tmp_path, f"smtp://127.0.0.1:{port}", ca_file)
    t0 = now()
    assert deliver_now(settings, engine, at=t0) == 0  # nothing listens
    assert (stored(engine, notice_id).attempts, stored(engine, notice_id).next_attempt_at) == (
        1,
        t0 + timedelta(seconds=30),
    )
    assert deliver_now(settings, engine, at=t0 + timedelta(seconds=29)) == 0
    assert stored(engine, notice_id).attempts == 1  # not due yet: the relay is left alone
    assert deliver_now(settings, engine, at=t0 + timedelta(seconds=30)) == 0
    notice = stored(engine, notice_id)
    assert (notice.attempts, notice.next_attempt_at) == (2, t0 + timedelta(seconds=90))  # doubled
    inbox = relay(port, tls_context=server_tls, require_starttls=True)
    assert deliver_now(settings, engine, at=t0 + timedelta(seconds=60)) == 0  # back, but the notice waits
    assert deliver_now(settings, engine, at=t0 + timedelta(seconds=90)) == 1
    for minutes in (2, 30, 120):
        assert deliver_now(settings, engine, at=t0 + timedelta(minutes=minutes)) == 0
    assert len(inbox.messages) == 1 and stored(engine, notice_id).attempts == 3


def test_a_worker_that_died_mid_send_leaves_the_notice_to_the_next(
    tmp_path: Path, engine: Engine, notice_id: int, relay: Callable[..., Inbox]
) -> None:
    inbox = relay()
    settings = settings_for(tmp_path, f"smtp+insecure://127.0.0.1:{inbox.port}")
    at = now()
    with open_session(engine) as session:
        assert outbox.claim(session, notice_id=notice_id, at=at) == 1  # a worker took it, then was killed
        assert outbox.claim(session, notice_id=notice_id, at=at) is None  # no second worker while it is held
    assert deliver_now(settings, engine, at=at + outbox.LEASE - timedelta(seconds=1)) == 0
    assert deliver_now(settings, engine, at=at + outbox.LEASE) == 1
    assert deliver_now(settings, engine, at=at + 2 * outbox.LEASE) == 0
    assert len(inbox.messages) == 1


class Stalling(Inbox):
    """Holds the first connection at RCPT, before anything is accepted, so its worker can be killed there."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = threading.Event()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if not self.stalled.is_set():
            self.stalled.set()
            await asyncio.sleep(30)  # cancelled when the killed worker's connection drops
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_killed_worker_loses_nothing_and_sends_nothing_twice(tmp_path: Path, engine: Engine) -> None:
    """A real worker process is killed mid-send; after a restart (past its lease) the notice goes out once."""
    database_url = PG_URL or f"sqlite:///{tmp_path / 'outbox.db'}"
    if not PG_URL:
        engine = make_engine(database_url)
        SQLModel.metadata.create_all(engine)
    notice_id = add_notice(engine)
    inbox = Stalling()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    url = f"smtp+insecure://127.0.0.1:{controller.port}"
    env = {**os.environ, "DATA_DIR": str(tmp_path), "DATABASE_URL": database_url, "SMTP_URL": url}
    try:
        worker = subprocess.Popen([sys.executable, "-c", WORKER], env=env)
        assert inbox.stalled.wait(timeout=30), "the worker never reached the relay"
        worker.kill()
        worker.wait(timeout=10)
        assert stored(engine, notice_id).attempts == 1 and stored(engine, notice_id).mailed_at is None
        settings = make_settings(tmp_path, smtp_url=url)
        assert deliver_now(settings, engine) == 0  # still leased to the dead worker
        assert deliver_now(settings, engine, at=now() + outbox.LEASE) == 1
        assert deliver_now(settings, engine, at=now() + 2 * outbox.LEASE) == 0
    finally:
        controller.stop()
    assert len(inbox.messages) == 1


WORKER = """
from db.engine import make_engine
from web.config import load_settings
from web.outbox import deliver_now
settings = load_settings()
deliver_now(settings, make_engine(settings.database_url))
"""


def test_backoff_doubles_from_30_seconds_to_an_hour() -> None:
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 7, 8, 1000)] == [30, 60, 120, 1920, 3600, 3600]


@pytest.mark.parametrize("url", ["smtpx://relay.example", "http://relay.example", "relay.example:25", "smtp://:25"])
def test_an_unknown_smtp_url_is_refused_at_start_up(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValueError, match="SMTP_URL"):
        settings_for(tmp_path, url)

"""The operator CLI, run as the operator runs it: `python -m web …` in a subprocess on a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from db.engine import make_engine, open_session
from db.factors import totp
from db.models import SecurityEvent, TotpDevice
from tests.conftest import PASSWORD
from web.app import hasher_for, keyring_for  # noqa: I001

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
    }


def web(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "web", *args], input=stdin, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )


def test_user_create_list_and_errors(env: dict[str, str]) -> None:
    created = web(
        env,
        "user",
        "create",
        "--email",
        "Ann@Example.com",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    assert "Created admin ann@example.com" in created.stdout
    duplicate = web(
        env, "user", "create", "--email", "ann@example.com", "--role", "agent", "--password-stdin", stdin=PASSWORD
    )
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    weak = web(
        env, "user", "create", "--email", "bob@example.com", "--role", "agent", "--password-stdin", stdin="short\n"
    )
    assert weak.returncode == 1 and "at least 15" in weak.stderr
    role = web(
        env, "user", "create", "--email", "bob@example.com", "--role", "owner", "--password-stdin", stdin=PASSWORD
    )
    assert role.returncode == 2 and "invalid choice" in role.stderr
    listed = web(env, "user", "list")
    assert listed.returncode == 0 and "ann@example.com\tadmin\tmfa=off" in listed.stdout
    assert "bob@example.com" not in listed.stdout


def test_secret_files_are_generated_once_with_mode_0600(env: dict[str, str]) -> None:
    assert web(env, "migrate").returncode == 0
    data = Path(env["DATA_DIR"])
    for name in ("secret_key", "mfa_encryption_keys"):
        path = data / name
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        first = path.read_text()
        web(env, "migrate")
        assert path.read_text() == first


def test_setup_link_only_on_an_empty_instance(env: dict[str, str]) -> None:
    link = web(env, "setup-link")
    assert link.returncode == 0 and "/setup/" in link.stdout
    web(env, "user", "create", "--email", "ann@example.com", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    assert "already has members" in web(env, "setup-link").stdout


def test_reset_mfa_removes_the_factor_and_logs_the_operator(env: dict[str, str]) -> None:
    from db import mfa, users
    from db.events import OPERATOR
    from web.config import load_settings

    web(env, "migrate")
    settings = load_settings(env)
    engine = make_engine(env["DATABASE_URL"])
    with open_session(engine) as session:
        user = users.create_user(
            session,
            email="ann@example.com",
            role="agent",
            password=PASSWORD,
            hasher=hasher_for(settings),
            actor=OPERATOR,
        )
        sealed, secret = totp.begin_enrolment(keyring_for(settings), user_id=user.id or 0)
        import pyotp

        mfa.confirm_totp(
            session,
            user=user,
            sealed=sealed,
            code=pyotp.TOTP(secret).now(),
            keyring=keyring_for(settings),
            ttl=600,
            actor=OPERATOR,
        )
    missing = web(env, "user", "reset-mfa", "--email", "nobody@example.com")
    assert missing.returncode == 1 and "No member" in missing.stderr
    done = web(env, "user", "reset-mfa", "--email", "ann@example.com")
    assert done.returncode == 0, done.stderr
    with open_session(engine) as session:
        assert list(session.exec(select(TotpDevice))) == []
        [event] = [e for e in session.exec(select(SecurityEvent)) if e.kind == "mfa_reset"]
    assert event.actor_label == "operator/CLI" and event.target_label == "ann@example.com"
    outbox = (Path(env["DATA_DIR"]) / "outbox.txt").read_text()
    assert "reset by operator/CLI" in outbox

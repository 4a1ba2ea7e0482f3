"""Secrets at rest (security requirements 4, 5, 16 and issue #4 item 3): the setup key and backup codes are
never in the database or the cookie in the clear; `python -m web keys rotate` re-encrypts every stored secret
under the newest key; a wrong key fails closed."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from base64 import b64decode
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import Engine, text
from sqlmodel import SQLModel, select
from starlette.testclient import TestClient

from db import mfa, migrate, sensitive
from db.crypto import InvalidToken, Keyring, new_key
from db.engine import make_engine, open_session
from db.events import OPERATOR
from db.factors import totp
from db.models import TotpDevice, Webhook
from db.users import create_user
from tests.conftest import PG_URL, Auth, Clock, Member, backup_codes, make_settings, setup_key
from web.app import create_app, hasher_for, keyring_for  # noqa: I001
from web.config import Settings, keys_file, load_settings

ROOT = Path(__file__).resolve().parent.parent
COOKIE = "__Host-chat360_session"


def cookie_text(client: TestClient) -> str:
    """The raw cookie and its decoded payload (the cookie is signed, not encrypted)."""
    raw = client.cookies.get(COOKIE) or ""
    return raw + "\n" + b64decode(raw.split(".")[0]).decode()


def forms_of_secret(secret: str) -> list[bytes]:
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return [secret.encode(), secret.lower().encode(), grouped.encode(), base64.b32decode(secret)]


def forms_of_code(code: str) -> list[bytes]:
    bare = code.replace("-", "")
    return [code.encode(), bare.encode(), bare.lower().encode(), code.lower().encode()]


def stored_bytes(engine: Engine, sqlite_file: Path | None) -> bytes:
    """Everything the database holds: the SQLite file and its WAL, or every PostgreSQL row as text."""
    if sqlite_file is not None:
        files = [sqlite_file, sqlite_file.with_name(sqlite_file.name + "-wal")]
        return b"".join(p.read_bytes() for p in files if p.exists())
    chunks = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            chunks.extend(r.encode() for r in conn.execute(text(f'SELECT t::text FROM "{table.name}" t')).scalars())
    return b"\n".join(chunks)


@pytest.mark.parametrize("backend", ["sqlite-file", "postgresql"])
def test_setup_key_and_backup_codes_are_never_stored_or_sent_in_the_clear(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock, backend: str
) -> None:
    """Rules 3, 4, 5 and 16: while pending, the setup key is neither in the database nor readable in the cookie;
    once confirmed the database holds it only encrypted, and no backup code in any normalised form."""
    if backend == "postgresql":
        if not PG_URL:
            pytest.skip("TEST_DATABASE_URL is not set: no PostgreSQL rows to read")
        engine, url, db_file = request.getfixturevalue("engine"), PG_URL, None
    else:
        db_file = tmp_path / "keys.db"
        url = f"sqlite:///{db_file}"
        engine = make_engine(url)
        SQLModel.metadata.create_all(engine)
    settings = make_settings(tmp_path, database_url=url, totp_clock=clock)
    with TestClient(create_app(settings, engine), base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, settings)
        member = auth.create("holder@example.com")
        auth.login(member)
        response = auth.post("/settings/mfa/totp/enable", page="/settings", headers={"HX-Request": "true"})
        member.secret = setup_key(response.text)
        pending = cookie_text(client).encode()
        assert b"mfa.pending" in pending, "expected the sealed pending secret in the cookie"
        assert not any(form in pending for form in forms_of_secret(member.secret)), "setup key readable in cookie"
        client.get("/settings/mfa/totp")  # leaving the page and coming back stores nothing either
        assert not any(form in stored_bytes(engine, db_file) for form in forms_of_secret(member.secret))
        with open_session(engine) as session:
            assert session.exec(select(TotpDevice)).first() is None

        response = auth.post("/settings/mfa/totp/confirm", {"code": member.fresh_code()}, page="/settings")
        codes = backup_codes(response.text)
        assert len(codes) == 10
        after = cookie_text(client).encode()
        assert not any(f in after for f in forms_of_secret(member.secret) + forms_of_code(codes[0]))
    stored = stored_bytes(engine, db_file)
    assert member.email.encode() in stored, "the dump does not see the data, so it would prove nothing"
    for form in forms_of_secret(member.secret):
        assert form not in stored, f"setup key stored in the clear ({form!r})"
    for code in codes:
        for form in forms_of_code(code):
            assert form not in stored, "backup code stored in the clear"
    if db_file is not None:
        engine.dispose()


# ---- key rotation through the operator's command line


def file_database(tmp_path: Path) -> tuple[str, Engine]:
    url = f"sqlite:///{tmp_path / 'rotate.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    return url, engine


def enrol(engine: Engine, settings: Settings, keyring: Keyring, at: float) -> tuple[Member, int]:
    """A member with an authenticator whose secret is sealed under `keyring`, plus a webhook secret."""
    with open_session(engine) as session:
        user = create_user(
            session,
            email="rotating@example.com",
            role="admin",
            password="correct horse battery staple",
            hasher=hasher_for(settings),
            actor=OPERATOR,
        )
        sealed, secret = totp.begin_enrolment(keyring, user_id=user.id or 0)
        code = pyotp.TOTP(secret).at(int(at))
        changed = mfa.confirm_totp(
            session, user=user, sealed=sealed, code=code, keyring=keyring, ttl=600, actor=OPERATOR, at=at
        )
        sensitive.add_webhook(session, url="https://93.184.215.14/x", keyring=keyring, actor=OPERATOR)
    clock = settings.totp_clock
    return Member(user, clock, secret=secret, codes=changed.codes), 2  # type: ignore[arg-type]


def stored_ciphertexts(engine: Engine) -> list[str]:
    with open_session(engine) as session:
        rows = [*session.exec(select(TotpDevice)), *session.exec(select(Webhook))]
        return [row.secret_encrypted for row in rows]


def decryptable(keyring: Keyring, token: str) -> bool:
    try:
        keyring.decrypt(token)
    except InvalidToken:
        return False
    return True


def second_step(settings: Settings, engine: Engine, member: Member) -> object:
    """Sign in with the password and a fresh authenticator code on an app using `settings`' keys."""
    with TestClient(create_app(settings, engine), base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, settings)
        assert auth.password(member).headers["location"].startswith("/login/verify")
        return auth.post("/login/verify", {"code": member.fresh_code()}, page="/login/verify")


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("MFA_ENCRYPTION_KEYS", "SECRET_KEY", "DATABASE_URL")}
    full |= {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024"} | env
    return subprocess.run(
        [sys.executable, "-m", "web", *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60
    )


def test_rotation_with_keys_in_the_environment(tmp_path: Path, clock: Clock) -> None:
    """Rule 5 / issue #4: with a new key put first, secrets sealed under the old key still verify; after
    `keys rotate` every stored secret opens with the new key and none with the old one alone."""
    old, new = new_key(), new_key()
    url, engine = file_database(tmp_path)
    settings = make_settings(tmp_path, database_url=url, totp_clock=clock, mfa_keys=(old,))
    member, count = enrol(engine, settings, keyring_for(settings), clock())
    both = make_settings(tmp_path, database_url=url, totp_clock=clock, mfa_keys=(new, old))
    assert second_step(both, engine, member).status_code == 303

    result = cli(
        {"DATA_DIR": str(tmp_path), "DATABASE_URL": url, "MFA_ENCRYPTION_KEYS": f"{new},{old}"}, "keys", "rotate"
    )
    assert result.returncode == 0, result.stderr
    assert f"Re-encrypted {count} secret(s)" in result.stdout
    tokens = stored_ciphertexts(engine)
    assert len(tokens) == count
    assert not any(decryptable(Keyring((old,)), t) for t in tokens), "a secret still opens with the old key"
    assert all(decryptable(Keyring((new,)), t) for t in tokens)

    only_new = make_settings(tmp_path, database_url=url, totp_clock=clock, mfa_keys=(new,))
    assert second_step(only_new, engine, member).status_code == 303
    engine.dispose()


def test_rotation_with_the_managed_keys_file(tmp_path: Path, clock: Clock) -> None:
    """Rule 5: with keys kept in DATA_DIR, `keys rotate` makes a new key, re-encrypts, and leaves only the new
    key in the 0600 file; the old key opens nothing afterwards and the app (reloaded) still verifies."""
    url, engine = file_database(tmp_path)
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": url}
    loaded = load_settings(env)
    settings = make_settings(tmp_path, database_url=url, totp_clock=clock, mfa_keys=loaded.mfa_keys)
    member, count = enrol(engine, settings, keyring_for(loaded), clock())
    old = loaded.mfa_keys

    result = cli(env, "keys", "rotate")
    assert result.returncode == 0, result.stderr
    path = keys_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    current = tuple(path.read_text().split())
    assert len(current) == 1 and current != old
    tokens = stored_ciphertexts(engine)
    assert len(tokens) == count
    assert not any(decryptable(Keyring(old), t) for t in tokens)
    assert all(decryptable(Keyring(current), t) for t in tokens)
    reloaded = make_settings(tmp_path, database_url=url, totp_clock=clock, mfa_keys=load_settings(env).mfa_keys)
    assert second_step(reloaded, engine, member).status_code == 303
    engine.dispose()


def test_a_foreign_key_fails_closed(tmp_path: Path, clock: Clock) -> None:
    """Rule 5: with a key that can't open the stored secret, a right code is refused with the generic message
    (never a 500, never a trace), MFA stays on, and neither step-up nor Disable get around it."""
    url, engine = file_database(tmp_path)
    settings = make_settings(tmp_path, database_url=url, totp_clock=clock)
    member, _ = enrol(engine, settings, keyring_for(settings), clock())
    foreign = make_settings(tmp_path, database_url=url, totp_clock=clock, mfa_keys=(new_key(),))
    response = second_step(foreign, engine, member)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert "Incorrect code" in response.text and "Traceback" not in response.text  # type: ignore[attr-defined]
    with TestClient(create_app(foreign, engine), base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, foreign)
        auth.password(member)
        assert (codes := member.codes)
        assert (
            auth.post("/login/verify", {"method": "backup", "backup_code": codes[0]}, page="/login/verify").status_code
            == 303
        )
        fields = {"reauth_factor": "totp", "reauth_secret": member.fresh_code(), "reauth_method": "GET"}
        assert auth.post("/reauth", fields, page="/settings").status_code == 422
        assert (
            auth.post("/settings/mfa/totp/disable", {"code": member.fresh_code()}, page="/settings").status_code == 422
        )
    with open_session(engine) as session:
        assert session.exec(select(TotpDevice)).first() is not None
    engine.dispose()


def test_another_secret_key_turns_every_cookie_anonymous(tmp_path: Path, engine: Engine, clock: Clock) -> None:
    """Rule 5 / 24: cookies signed under another SECRET_KEY are an empty session (sign in again), not an error."""
    first = make_settings(tmp_path, totp_clock=clock)
    with TestClient(create_app(first, engine), base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, first)
        auth.login(auth.create())
        copied = client.cookies.get(COOKIE) or ""
    second = make_settings(tmp_path, totp_clock=clock, secret_key="another-secret-key-" + "y" * 32)
    with TestClient(create_app(second, engine), base_url="https://testserver", follow_redirects=False) as client:
        client.cookies.set(COOKIE, copied, domain="testserver.local")
        response = client.get("/settings")
        assert response.status_code == 303 and response.headers["location"].startswith("/login?")


def test_rotation_with_keys_that_cannot_open_the_secrets_fails_cleanly(tmp_path: Path, clock: Clock) -> None:
    """CLI contract (web/cli.py: "1 with a message on standard error"): rotating with keys that can't open a
    stored secret exits 1 with a one-line message, no traceback, and changes nothing."""
    url, engine = file_database(tmp_path)
    settings = make_settings(tmp_path, database_url=url, totp_clock=clock)
    enrol(engine, settings, keyring_for(settings), clock())
    before = stored_ciphertexts(engine)
    env = {"DATA_DIR": str(tmp_path), "DATABASE_URL": url, "MFA_ENCRYPTION_KEYS": new_key()}
    result = cli(env, "keys", "rotate")
    assert stored_ciphertexts(engine) == before
    engine.dispose()
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and result.stderr.startswith("error:"), result.stderr

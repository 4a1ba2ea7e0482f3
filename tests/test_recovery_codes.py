"""Backup codes: strength, storage as argon2id hashes, single use, regeneration behind step-up."""

from __future__ import annotations

import math
import re
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import select
from starlette.testclient import TestClient

from db.engine import open_session
from db.factors import recovery_codes as codes
from db.models import RecoveryCode, SecurityEvent
from tests.conftest import Auth, Member, backup_codes, make_settings
from web.app import create_app

HX = {"HX-Request": "true"}


def test_codes_are_long_random_and_distinct() -> None:
    first, second = codes.generate(), codes.generate()
    assert len(first) == 10 and len(set(first)) == 10
    assert not set(first) & set(second)
    bits = codes.LENGTH * math.log2(len(codes.ALPHABET))
    assert bits >= 64
    for code in first:
        assert re.fullmatch(r"[A-Z0-9]{4}(-[A-Z0-9]{4}){3}", code)
        assert not set(code) & set("01ILOU")  # no look-alikes


def test_codes_normalize_case_spaces_and_dashes() -> None:
    code = codes.generate(1)[0]
    plain = code.replace("-", "")
    for typed in (code, code.lower(), plain, " ".join(code.split("-")), f"  {code.lower()}  "):
        assert codes.normalize(typed) == plain
    assert codes.normalize(plain[:-1]) is None
    assert codes.normalize(plain[:-1] + "O") is None
    assert codes.normalize(plain + "A") is None


def test_codes_are_stored_only_as_argon2id_hashes(auth: Auth, member: Member, engine: Engine) -> None:
    auth.login(member)
    auth.enable_totp(member)
    with open_session(engine) as session:
        rows = list(session.exec(select(RecoveryCode)))
    assert len(rows) == 10
    stored = " ".join(f"{r.lookup} {r.code_hash}" for r in rows)
    for code in member.codes or []:
        for form in (code, code.replace("-", ""), code.lower()):
            assert form not in stored
    assert all(r.code_hash.startswith("$argon2id$") for r in rows)
    assert len({r.code_hash.split("$")[4] for r in rows}) == 10  # a salt each


def test_a_used_code_is_refused_and_the_count_drops(auth: Auth, member: Member, client: TestClient) -> None:
    auth.login(member)
    auth.enable_totp(member)
    assert "10 of 10 left" in client.get("/settings/mfa/totp").text
    auth.logout()
    code = (member.codes or [])[0]
    auth.password(member)
    assert (
        auth.post("/login/verify", {"method": "backup", "backup_code": code}, page="/login/verify").status_code == 303
    )
    assert "9 of 10 left" in client.get("/settings/mfa/totp").text
    auth.logout()
    auth.password(member)
    again = auth.post("/login/verify", {"method": "backup", "backup_code": code}, page="/login/verify")
    assert again.status_code == 422


def test_regenerate_replaces_every_code(auth: Auth, member: Member, client: TestClient, engine: Engine) -> None:
    auth.login(member)
    auth.enable_totp(member)
    response = auth.post("/settings/mfa/backup-codes/regenerate", page="/settings", headers=HX)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "New backup codes are ready" in response.text
    fresh = backup_codes(response.text)
    assert len(fresh) == 10 and not set(fresh) & set(member.codes or [])
    later = client.get("/settings/mfa/totp").text
    assert backup_codes(later) == [] and "10 of 10 left" in later
    auth.logout()
    auth.password(member)
    old = auth.post("/login/verify", {"method": "backup", "backup_code": (member.codes or [])[1]}, page="/login/verify")
    assert old.status_code == 422
    new = auth.post("/login/verify", {"method": "backup", "backup_code": fresh[1]}, page="/login/verify")
    assert new.status_code == 303
    with open_session(engine) as session:
        assert "backup_codes_regenerated" in [e.kind for e in session.exec(select(SecurityEvent))]


def test_regenerate_needs_a_fresh_confirmation(tmp_path: Path, engine: Engine, clock) -> None:  # noqa: ANN001
    settings = make_settings(tmp_path, totp_clock=clock)
    app = create_app(settings, engine)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        auth = Auth(client, engine, settings)
        member = auth.create()
        auth.login(member)
        auth.enable_totp(member)
        object.__setattr__(settings, "reauth_window", -1)
        response = auth.post("/settings/mfa/backup-codes/regenerate", page="/settings", headers=HX)
        assert response.headers["HX-Retarget"] == "#modal"
        assert backup_codes(response.text) == []
        plain = auth.post("/settings/mfa/backup-codes/regenerate", page="/settings")
        assert plain.template.name == "auth/reauth.html"  # type: ignore[attr-defined]
    with open_session(engine) as session:
        hashes = {r.code_hash for r in session.exec(select(RecoveryCode))}
    assert len(hashes) == 10

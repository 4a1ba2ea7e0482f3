"""Key rotation in phases (security requirement 43): the key file is followed by every process without a
restart, and `keys promote` / `keys retire` refuse (exit 1, key file unchanged) while a live process has not
loaded the new key, still encrypts with the old one, or may have sealed a pending enrolment under it."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from db import migrate
from db.crypto import Keyring, fingerprint, new_key
from db.engine import make_engine, open_session
from db.keyfile import FileKeyring, read_keys, write_keys
from db.keyholders import report
from web.cli import main
from web.config import keys_file


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Engine]:
    """A file database and a managed key file holding one key, as `python -m web` would find them."""
    url = f"sqlite:///{tmp_path / 'phases.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    write_keys(keys_file(tmp_path), [new_key()])
    monkeypatch.delenv("MFA_ENCRYPTION_KEYS", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", url)
    yield keys_file(tmp_path), engine
    engine.dispose()


def live_process(engine: Engine, keyring: Keyring, name: str = "other-host:1:aa") -> None:
    """A running app process as the key commands see it: its latest report of the keys it holds."""
    with open_session(engine) as session:
        report(session, holder=name, keyring=keyring, every=2.0)


def run(*args: str) -> int:
    return main(["keys", *args, "--wait", "0"])


def test_keyring_follows_its_file(tmp_path: Path) -> None:
    """A token sealed by a process that already has the new key opens at once (the miss forces a look)."""
    path = tmp_path / "keys"
    old, new = new_key(), new_key()
    write_keys(path, [old])
    keyring = FileKeyring(path)
    write_keys(path, [new, old])
    assert keyring.decrypt(Keyring([new]).encrypt("seed")) == "seed"
    assert keyring.fingerprints() == (fingerprint(new), fingerprint(old))


def test_promote_refuses_while_a_live_process_has_not_loaded_the_new_key(
    deployment: tuple[Path, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    path, engine = deployment
    old = read_keys(path)
    live_process(engine, Keyring(old))
    assert run("add") == 0
    added = read_keys(path)
    assert added[0] == old[0] and len(added) == 2
    assert run("promote") == 1
    assert "have not loaded key" in capsys.readouterr().err
    assert read_keys(path) == added

    live_process(engine, Keyring(added))
    assert run("promote") == 0
    assert read_keys(path) == (added[1], old[0])


def test_retire_refuses_while_a_live_process_has_not_loaded_the_new_key(
    deployment: tuple[Path, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    path, engine = deployment
    old, new = read_keys(path)[0], new_key()
    write_keys(path, [new, old])  # promoted here, but the other process still has only the old key
    live_process(engine, Keyring([old]))
    assert run("retire") == 1
    assert "still encrypts with a key to be retired" in capsys.readouterr().err
    assert read_keys(path) == (new, old)

    live_process(engine, Keyring([new, old]))
    assert run("retire") == 0
    assert read_keys(path) == (new,)


def test_rotate_keeps_the_old_key_while_an_enrolment_sealed_under_it_may_be_pending(
    deployment: tuple[Path, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    """A live process sealed a pending enrolment (cookie) under the old key before it took the new one: the
    old key must decrypt until that enrolment expires. `rotate` (waiting for the process to follow each
    phase) keeps it decrypt-only and says until when; `retire` refuses meanwhile."""
    path, engine = deployment
    process = FileKeyring(path)
    process.encrypt("pending enrolment")
    live_process(engine, process)
    rotation = threading.Thread(target=lambda: results.append(main(["keys", "rotate", "--wait", "20"])))
    results: list[int] = []
    rotation.start()
    while rotation.is_alive():  # the process's own loop: look at the file, report what it holds
        live_process(engine, process)
        rotation.join(timeout=0.2)
    assert results == [0]
    assert "stays, for decrypting only" in capsys.readouterr().out
    assert len(read_keys(path)) == 2
    assert process.old_sealed_at is not None and process.fingerprints()[0] == fingerprint(read_keys(path)[0])

    assert run("retire") == 1
    assert "sealed a pending enrolment under an old key; safe after" in capsys.readouterr().err
    assert len(read_keys(path)) == 2


def test_retire_refuses_while_a_stored_secret_needs_the_old_key(
    deployment: tuple[Path, Engine], capsys: pytest.CaptureFixture[str]
) -> None:
    from db import sensitive
    from db.events import OPERATOR

    path, engine = deployment
    old, new = read_keys(path)[0], new_key()
    with open_session(engine) as session:
        sensitive.add_webhook(session, url="https://93.184.215.14/x", keyring=Keyring([old]), actor=OPERATOR)
    write_keys(path, [new, old])
    assert run("retire") == 1
    assert "1 stored secret(s) still need a key to be retired" in capsys.readouterr().err
    assert run("reencrypt") == 0 and run("retire") == 0
    assert read_keys(path) == (new,)


def test_a_stopped_process_does_not_hold_up_a_rotation(deployment: tuple[Path, Engine]) -> None:
    path, engine = deployment
    with open_session(engine) as session:
        report(session, holder="gone:1:aa", keyring=Keyring(read_keys(path)), every=2.0, stopped=True)
    started = time.monotonic()
    assert run("rotate") == 0
    assert len(read_keys(path)) == 1 and time.monotonic() - started < 10

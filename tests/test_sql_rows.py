"""The model's Core writes (db/sql.py): a row inserted without the unit of work takes the model's defaults,
and the sign-in stamp is one UPDATE, not a second one from the loaded object at commit."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from db import users
from db.engine import open_session
from db.events import Actor
from db.models import SecurityEvent, User
from db.sql import insert_row
from tests.conftest import Auth
from tests.statements import counted


def test_an_inserted_row_takes_the_models_defaults(engine: Engine) -> None:
    with open_session(engine) as session:
        insert_row(session, SecurityEvent, kind="sign_in", target_label="a@example.com")
        session.commit()
        event = session.exec(select(SecurityEvent)).one()
    assert (event.outcome, event.repeats, event.detail) == ("success", 0, "")
    assert event.id is not None and event.at is not None


def test_a_field_the_model_does_not_have_is_refused(engine: Engine) -> None:
    with open_session(engine) as session, pytest.raises(TypeError, match="no field colour"):
        insert_row(session, SecurityEvent, kind="sign_in", colour="blue")


def test_the_sign_in_stamp_is_one_update_of_the_member(auth: Auth, engine: Engine) -> None:
    member = auth.create()
    actor = Actor(member.user.id, member.email, "192.0.2.1", "test")
    with open_session(engine) as session:
        user = session.get(User, member.user.id)
        assert user is not None
        with counted(engine) as seen:
            users.mark_signed_in(session, user=user, actor=actor, factor="totp")
            session.commit()
        assert user.last_sign_in_at is not None
    assert sum(s.lstrip().upper().startswith("UPDATE") for s in seen) == 1
    with open_session(engine) as session:
        stored = session.get(User, member.user.id)
        assert stored is not None and stored.last_sign_in_at is not None

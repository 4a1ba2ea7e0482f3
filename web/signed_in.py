"""The member behind a request's cookie: the session keys in the cookie, the one-statement load (with the
idle and absolute timeouts checked against the cookie's stamps), and the once-a-minute write of last
activity. Refusals are exceptions that `web.errors` turns into the right answer (sign in, second step,
enrolment)."""

from __future__ import annotations

import time

import anyio.to_thread
from starlette.requests import Request

from db import sessions
from db.engine import open_session
from db.member import Member
from web.config import Settings
from web.templating import wants_partial

SID = "auth.sid"  # the session's token (signed in, or pending the second step)
PENDING = "auth.pending"  # password accepted, second step not yet
SINCE = "auth.since"  # when the member signed in (absolute lifetime)
SEEN = "auth.seen"  # last activity (idle timeout), refreshed at most every few seconds


class NotSignedIn(Exception):
    pass


class SecondStepRequired(Exception):
    pass


class EnrolmentRequired(Exception):
    pass


async def touch_if_due(request: Request) -> None:
    """Write the session's last activity when the load found it due: in a worker thread, since a write can
    wait for SQLite's lock, and the event loop must not wait with it."""
    session_id = getattr(request.state, "touch", None)
    if session_id is not None:
        request.state.touch = None

        def write() -> None:
            with open_session(request.app.state.engine) as db:
                sessions.touch(db, session_id=session_id)

        await anyio.to_thread.run_sync(write)


def signed_in_member(request: Request, *, enrolling: bool = False) -> Member:
    """The signed-in member. `enrolling` lets a member whom the policy holds at enrolment through."""
    found: Member | None = getattr(request.state, "member", None)
    if found is None:
        found = request.state.member = load(request, lists=not wants_partial(request))
    if found.must_enrol and not enrolling:
        raise EnrolmentRequired()
    return found


def load(request: Request, *, lists: bool = False) -> Member:
    """The member behind the cookie, in one statement; `lists` adds their sessions and remembered browsers
    to it (a whole page shows them in Settings; a partial does not need them)."""
    session = request.session
    token = session.get(SID)
    if not isinstance(token, str):
        raise NotSignedIn()
    if session.get(PENDING):
        raise SecondStepRequired()
    config: Settings = request.app.state.settings
    at = time.time()
    since, seen = float(session.get(SINCE, 0)), float(session.get(SEEN, 0))
    expired = at - since > config.absolute_timeout or at - seen > config.idle_timeout
    stale = at - seen > stale_after(config)
    engine = request.app.state.engine
    found = None
    if expired:
        with open_session(engine) as db:
            sessions.end(db, token=token)
            db.commit()
    else:
        with request.app.state.reader.connect() as connection:
            found = sessions.load(connection, token=token, with_lists=lists)
    if found is None:
        session.clear()
        raise NotSignedIn()
    if stale:  # last activity is written with the cookie's stamp (once a minute), not per request
        session[SEEN] = int(at)
        request.state.touch = found.auth.id
    request.state.member = found
    return found


def stale_after(config: Settings) -> float:
    """The idle stamp is written when it is older than this, not on every request."""
    return min(60, config.idle_timeout / 10)

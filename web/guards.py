"""Who is asking, and whether they may: signed in, past the second step, enrolled as the policy demands,
an admin, recently re-authenticated. Each check raises an exception that `web.errors` turns into the
right answer for a page or an htmx partial."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request

from db import signins
from db.clock import now
from db.engine import open_session
from db.events import Actor
from db.signins import Member
from web.config import Settings

SID = "auth.sid"  # the signed-in session's token
SINCE = "auth.since"  # when the member signed in (absolute lifetime)
SEEN = "auth.seen"  # last activity (idle timeout), refreshed at most every few seconds
PENDING_USER = "login.user"  # password accepted, second step not yet
PENDING_AT = "login.at"
ENROLMENT = "mfa.pending"  # the sealed, not yet confirmed authenticator secret


class NotSignedIn(Exception):
    pass


class SecondStepRequired(Exception):
    pass


class EnrolmentRequired(Exception):
    pass


class ReauthRequired(Exception):
    pass


def settings(request: Request) -> Settings:
    return request.app.state.settings


@contextmanager
def db(request: Request) -> Iterator[Session]:
    with open_session(request.app.state.engine) as session:
        yield session


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def actor(request: Request, member: Member | None = None) -> Actor:
    ua = request.headers.get("user-agent", "")[:255]
    if member is None:
        return Actor(None, "", client_ip(request), ua)
    return Actor.of(member.user, ip=client_ip(request), user_agent=ua, session_id=member.auth.id)


def begin_session(request: Request, values: dict[str, object]) -> None:
    """Replace the whole cookie session: a new privilege level gets a new session (and CSRF token)."""
    request.session.clear()
    request.session.update(values)


def member(request: Request, *, enrolling: bool = False) -> Member:
    """The signed-in member. `enrolling` lets a member whom the policy holds at enrolment through."""
    found: Member | None = getattr(request.state, "member", None)
    if found is None:
        found = _load(request)
        request.state.member = found
    if found.must_enrol and not enrolling:
        raise EnrolmentRequired()
    return found


def _load(request: Request) -> Member:
    session = request.session
    token = session.get(SID)
    if not isinstance(token, str):
        raise SecondStepRequired() if PENDING_USER in session else NotSignedIn()
    config = settings(request)
    at = time.time()
    since, seen = float(session.get(SINCE, 0)), float(session.get(SEEN, 0))
    expired = at - since > config.absolute_timeout or at - seen > config.idle_timeout
    with db(request) as s:
        if expired:
            signins.end(s, token=token)
        found = None if expired else signins.load(s, token=token)
    if found is None:
        session.clear()
        raise NotSignedIn()
    if at - seen > min(60, config.idle_timeout / 10):
        session[SEEN] = int(at)
    return found


def admin(request: Request) -> Member:
    found = member(request)
    if not found.is_admin:
        raise HTTPException(403, "Only admins can open this page.")
    return found


def require_recent_auth(request: Request, found: Member) -> None:
    """Sensitive actions need a check of the member's second factor (or password) within the window.

    Checked on the server at submit time too: the time lives in the session row, not in the browser.
    """
    age = (now() - found.auth.verified_at).total_seconds()
    if age > settings(request).reauth_window:
        raise ReauthRequired()


def signed_in(request: Request, token: str) -> None:
    """Store a new signed-in session's token in a fresh cookie session."""
    at = int(time.time())
    begin_session(request, {SID: token, SINCE: at, SEEN: at})

"""The request context: who is asking and whether they may (signed in, past the second step, enrolled as
the policy demands, an admin, recently re-authenticated), and the plumbing every route shares: the form,
a database session, the actor, the keyring, the hasher and the clock.

What a route needs is declared with it, `@guarded(admin=True)`, so no route can forget a check: every
state-changing admin route asks "Confirm it's you" by rule (security requirement 41). Each refusal raises
an exception that `web.errors` turns into the right answer for a page or an htmx partial.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import anyio.to_thread
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from db import sessions
from db.clock import now
from db.engine import open_session
from db.events import Actor
from db.i18n import _
from db.member import Member
from db.signin import Finished
from web.config import Settings
from web.cookies import set_remembered
from web.hashing import HashPool
from web.protect import csrf_token
from web.signed_in import PENDING, SEEN, SID, SINCE, load, signed_in_member, touch_if_due
from web.templating import url_path, wants_partial

ENROLMENT = "mfa.pending"  # the sealed, not yet confirmed authenticator secret
SAFE_METHODS = frozenset({"GET", "HEAD"})
T = TypeVar("T")


class ReauthRequired(Exception):
    pass


@dataclass(frozen=True)
class Guard:
    """What a route asks of the request before it runs."""

    signed_in: bool = True
    admin: bool = False
    step_up: bool = False  # also for reading (Webhooks, Billing); admin changes always need it
    enrolling: bool = False  # a member whom the policy holds at enrolment may use it

    def needs_step_up(self, method: str) -> bool:
        return self.step_up or (self.admin and method not in SAFE_METHODS)


class Context:
    def __init__(self, request: Request, member: Member | None, form: FormData | None) -> None:
        self.request = request
        self.member_or_none = member
        self.form = form
        self.settings: Settings = request.app.state.settings

    @property
    def member(self) -> Member:
        assert self.member_or_none is not None, "the route is guarded as signed in"
        return self.member_or_none

    @property
    def session(self) -> dict[str, Any]:
        return self.request.session

    def field(self, name: str, limit: int = 256) -> str:
        """A form field as text, cut at `limit`. A NUL (which PostgreSQL text can't hold) becomes U+FFFD,
        so it fails validation like any other wrong character instead of failing the query."""
        value = self.form.get(name, "") if self.form is not None else ""
        return value[:limit].replace("\x00", "\ufffd") if isinstance(value, str) else ""

    @property
    def actor(self) -> Actor:
        request, member = self.request, self.member_or_none
        ip = request.client.host if request.client else ""
        ua = request.headers.get("user-agent", "")[:255]
        if member is None:
            return Actor(None, "", ip, ua)
        return Actor(member.user.id, member.user.email, ip, ua, member.auth.id)

    async def run(self, service: Callable[..., T], /, *, hashing: bool | None = None, **kwargs: Any) -> T:
        """Call a model service in a worker thread with a database session and whichever of actor,
        keyring, hasher and clock (`at`) it takes. Services that hash a password wait for a place in the
        bounded hashing pool (`hashing`, by default: the service takes the hasher); everything else (TOTP
        checks, backup codes, a step-up with a code) never queues behind them, and the pool's threads run at a
        lower CPU priority than the event loop (web/hashing.py)."""
        state = self.request.app.state
        provided: dict[str, Callable[[], object]] = {
            "actor": lambda: self.actor,
            "keyring": lambda: state.keyring,
            "hasher": lambda: state.hasher,
            "at": lambda: self.settings.totp_clock(),
        }
        wanted = _parameters(service)
        for name, make in provided.items():
            if name in wanted and name not in kwargs:
                kwargs[name] = make()

        def call() -> T:
            with open_session(state.engine) as db:
                return service(db, **kwargs)

        if "hasher" in wanted if hashing is None else hashing:
            pool: HashPool = state.hash_pool
            return await pool.run(call)
        return await anyio.to_thread.run_sync(call)

    def rotate(self, token: str | None) -> None:
        """The session continues on a new token (its privilege changed): the cookie follows, and the
        member is loaded again when next asked for."""
        if token:
            self.session[SID] = token
            self.member_or_none = load(self.request, lists=not wants_partial(self.request))

    def refresh(self) -> None:
        """Load the member again with their sessions and remembered browsers, after a change to those."""
        self.member_or_none = load(self.request, lists=True)

    async def keep_alive(self) -> None:
        """The member said they are still here ("Stay signed in"): the idle clock starts again now, in the
        cookie and on the session row. The absolute lifetime (`SINCE`) is not touched: it can't be extended."""
        self.session[SEEN] = int(time.time())
        await self.run(sessions.touch, session_id=self.member.auth.id)

    def start_session(self, token: str, *, pending: bool = False) -> None:
        """A new session in a fresh cookie session: a new privilege level gets a new CSRF token too."""
        at = int(time.time())
        self.session.clear()
        self.session.update({SID: token, SINCE: at, SEEN: at} | ({PENDING: True} if pending else {}))
        csrf_token(self.session)  # made now, so the pages that follow don't change (and re-sign) the cookie

    def enter(self, done: Finished, next_path: str) -> Response:
        """A finished sign-in (second step or passkey): a fresh cookie session, then the 2FA check-up when it
        is due (asked once, before going on), else where the member was going; a remembered browser's
        cookie when they asked for one."""
        self.start_session(done.session_token)
        if done.checkup:
            next_path = url_path(self.request, "show_checkup") + "?next=" + quote(next_path, safe="/")
        response = RedirectResponse(next_path, status_code=303)
        if done.remember_token:
            set_remembered(response, self.request.scope, token=done.remember_token, days=done.remember_days)
        return response


@functools.cache
def _parameters(service: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(service).parameters)


def guarded(
    *, signed_in: bool = True, admin: bool = False, step_up: bool = False, enrolling: bool = False
) -> Callable[[Callable[[Context], Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
    """Declare what a route needs; the endpoint receives the request's Context."""
    guard = Guard(signed_in=signed_in or admin or step_up, admin=admin, step_up=step_up, enrolling=enrolling)

    def wrap(route: Callable[[Context], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(route)
        async def endpoint(request: Request) -> Response:
            return await route(await context(request, guard))

        endpoint.guard = guard  # type: ignore[attr-defined]  # read by the router walk in the tests (rule 41)
        return endpoint

    return wrap


async def context(request: Request, guard: Guard) -> Context:
    form = await request.form() if request.method not in SAFE_METHODS else None
    request.state.resumed = form is not None and "reauth_next" in form  # sent again after "Confirm it's you"
    member = None
    if guard.signed_in:
        try:
            member = signed_in_member(request, enrolling=guard.enrolling)
        finally:
            await touch_if_due(request)
        if guard.admin and not member.is_admin:
            raise HTTPException(403, _("Only admins can open this page."))
        if guard.needs_step_up(request.method):
            require_recent_check(request, member)
    return Context(request, member, form)


def require_recent_check(request: Request, member: Member) -> None:
    """Sensitive actions need a check of the member's second factor (or password, without MFA) within the
    window. Checked on the server at submit time: the time lives in the session row, not in the browser."""
    age = (now() - member.auth.verified_at).total_seconds()
    if age > request.app.state.settings.reauth_window:
        raise ReauthRequired()

"""Team (members, MFA policy, reset and unlock) for admins, and Security activity for everyone."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from db import events, mfa, org
from db.users import InvalidInput
from web import guards, urls
from web.forms import field
from web.safety import RowId
from web.templating import render

FLASH = "team.status"


def _team(request: Request, *, status_code: int = 200, **extra: object) -> Response:
    with guards.db(request) as session:
        members = org.list_members(session)
        policy = org.get_policy(session)
    context = {"members": members, "policy": policy, "roles": org.ROLES, "errors": {}, "status": None, "link": None}
    return render(request, "admin/team.html", "admin/_team.html", context | extra, status_code=status_code)


def _done(request: Request, status: str) -> Response:
    """The Team section again with what was done: swapped in for htmx, or after a redirect (the message
    waits in the session for the next page)."""
    if request.headers.get("HX-Request") != "true":
        request.session[FLASH] = status
        return RedirectResponse("/team", status_code=303)
    return _team(request, status=status)


async def show_team(request: Request) -> Response:
    guards.admin(request)
    return _team(request, status=request.session.pop(FLASH, None))


async def add_member(request: Request) -> Response:
    member = guards.admin(request)
    form = await request.form()
    email, role = field(form, "email", 320), field(form, "role", 16)
    config = guards.settings(request)
    try:
        with guards.db(request) as session:
            user, token = org.add_member(
                session, email=email, role=role, hasher=config.password_hasher, actor=guards.actor(request, member)
            )
    except InvalidInput as exc:
        return _team(request, errors={exc.field: exc.message}, new_email=email, status_code=422)
    link = urls.absolute(request, "show_set_password", token=token)
    return _team(request, status=f"Added {user.email}. Send them this one-time link to choose a password:", link=link)


def _target(request: Request, session: object) -> org.User:
    user = org.get_member(session, user_id=request.path_params["id"])  # type: ignore[arg-type]
    if user is None:
        raise HTTPException(404)
    return user


async def change_role(request: Request) -> Response:
    member = guards.admin(request)
    guards.require_recent_auth(request, member)
    form = await request.form()
    try:
        with guards.db(request) as session:
            user = _target(request, session)
            org.change_role(session, user=user, role=field(form, "role", 16), actor=guards.actor(request, member))
    except org.LastAdmin:
        return _team(request, errors={"role": "The organization needs at least one admin."}, status_code=422)
    except InvalidInput as exc:
        return _team(request, errors={"role": exc.message}, status_code=422)
    return _done(request, f"Changed the role of {user.email}.")


async def reset_mfa(request: Request) -> Response:
    member = guards.admin(request)
    guards.require_recent_auth(request, member)
    form = await request.form()
    reason = field(form, "reason", 200).strip() or "lost device"
    with guards.db(request) as session:
        user = _target(request, session)
        mfa.reset_mfa(session, user=user, actor=guards.actor(request, member), reason=reason)
    return _done(request, f"Reset multi-factor authentication for {user.email}; their sessions have ended.")


async def unlock_member(request: Request) -> Response:
    member = guards.admin(request)
    with guards.db(request) as session:
        user = _target(request, session)
        org.lift_lock(session, user=user, actor=guards.actor(request, member))
    return _done(request, f"Unlocked {user.email}.")


async def save_policy(request: Request) -> Response:
    member = guards.admin(request)
    guards.require_recent_auth(request, member)
    form = await request.form()
    try:
        with guards.db(request) as session:
            org.save_policy(
                session,
                require_admins=field(form, "require_admins") == "1",
                require_agents=field(form, "require_agents") == "1",
                grace_days=field(form, "grace_days", 8),
                actor=guards.actor(request, member),
            )
    except InvalidInput as exc:
        return _team(request, errors={exc.field: exc.message}, status_code=422)
    return _done(request, "Saved the security policy.")


def _filter(request: Request, member: guards.Member) -> tuple[events.EventFilter, dict[str, str]]:
    """Admins may filter by member; everyone else sees only their own events."""
    query = request.query_params
    raw = {k: query.get(k, "")[:40] for k in ("member", "kind", "date")}
    member_id = member.user.id
    if member.is_admin:
        member_id = int(raw["member"]) if re.fullmatch(RowId.regex, raw["member"]) else None
    since = until = None
    try:
        day = datetime.strptime(raw["date"], "%Y-%m-%d").replace(tzinfo=UTC) if raw["date"] else None
    except ValueError:
        day = None
    if day:
        since, until = day, day + timedelta(days=1)
    kind = raw["kind"] if raw["kind"] in events.KINDS else None
    return events.EventFilter(member_id=member_id, kind=kind, since=since, until=until), raw


async def show_activity(request: Request) -> Response:
    member = guards.member(request)
    where, raw = _filter(request, member)
    with guards.db(request) as session:
        rows = events.list_events(session, where=where)
        members = org.list_members(session) if member.is_admin else []
    context = {"rows": rows, "kinds": events.KINDS, "filters": raw, "members": members}
    return render(request, "admin/activity.html", "admin/_activity.html", context)


async def export_activity(request: Request) -> Response:
    member = guards.member(request)
    where, _ = _filter(request, member)
    with guards.db(request) as session:
        rows = events.list_events(session, where=where, limit=100_000)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time_utc", "event", "outcome", "actor", "target", "ip", "user_agent", "detail", "repeats"])
    for e in rows:
        cells = [e.at.isoformat(), e.kind, e.outcome, e.actor_label, e.target_label, e.ip, e.user_agent, e.detail]
        writer.writerow([*(_cell(c) for c in cells), e.repeats])
    headers = {"Content-Disposition": 'attachment; filename="security-activity.csv"', "Cache-Control": "no-store"}
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _cell(value: str) -> str:
    """Spreadsheets run cells that start with = + - @ (or a tab or CR); member-supplied text could."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value

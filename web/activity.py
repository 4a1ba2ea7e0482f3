"""Security activity: the log of security events, for everyone their own, for admins everyone's."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from starlette.responses import Response

from db import events, org
from web.guards import Context, guarded
from web.safety import RowId
from web.templating import render


def event_filter(ctx: Context) -> tuple[events.EventFilter, dict[str, str]]:
    """Admins may filter by member; everyone else sees only their own events."""
    query, member = ctx.request.query_params, ctx.member
    raw = {k: query.get(k, "")[:40] for k in ("member", "kind", "date")}
    member_id: int | None = member.user.id
    if member.is_admin:
        member_id = int(raw["member"]) if re.fullmatch(RowId.regex, raw["member"]) else None
    try:
        day = datetime.strptime(raw["date"], "%Y-%m-%d").replace(tzinfo=UTC) if raw["date"] else None
    except ValueError:
        day = None
    kind = raw["kind"] if raw["kind"] in events.KINDS else None
    until = day + timedelta(days=1) if day else None
    return events.EventFilter(member_id=member_id, kind=kind, since=day, until=until), raw


@guarded()
async def show_activity(ctx: Context) -> Response:
    where, raw = event_filter(ctx)
    rows = await ctx.run(events.list_events, where=where)
    members = (await ctx.run(org.list_members)) if ctx.member.is_admin else []
    context = {"rows": rows, "kinds": events.KINDS, "filters": raw, "members": members}
    return render(ctx.request, "admin/activity.html", "admin/_activity.html", context)


@guarded()
async def export_activity(ctx: Context) -> Response:
    where, _ = event_filter(ctx)
    rows = await ctx.run(events.list_events, where=where, limit=100_000)
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

"""Security activity: the log of security events, for everyone their own, for admins everyone's."""

from __future__ import annotations

import csv
import functools
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urlencode

from babel.dates import format_timedelta
from starlette.responses import Response

from db import event_pages, events, useragents
from db.i18n import ACTIVE, _
from web.guards import Context, guarded
from web.safety import RowId
from web.templating import render, wants_partial


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
    """A page of 50, newest first; `?before=`/`?after=` page by row id, keeping the filters in the links."""
    where, raw = event_filter(ctx)
    query, admin = ctx.request.query_params, ctx.member.is_admin
    before, after = _row_id(query.get("before")), _row_id(query.get("after"))
    chart = admin and not wants_partial(ctx.request)
    found = await ctx.run(event_pages.activity_page, where=where, before=before, after=after, admin=admin, chart=chart)
    page, members, chart_rows = found
    context = {"rows": page.rows, "page": page, "kinds": events.KINDS, "filters": raw, "members": members}
    context |= {"filter_query": urlencode({k: v for k, v in raw.items() if v}), "chart": chart_rows}
    context |= {"outcomes": events.OUTCOMES, "actors": events.ACTORS}
    context |= {"ago": functools.partial(relative_time, now=datetime.now(UTC)), "device": useragents.describe}
    return render(ctx.request, "admin/activity.html", "admin/_activity.html", context)


def _row_id(raw: str | None) -> int | None:
    return int(raw) if raw and re.fullmatch(RowId.regex, raw) else None


def relative_time(at: datetime, *, now: datetime) -> str:
    """'just now', '3 minutes ago', '2 hours ago', '5 days ago' (in the page's language); past a month, the date."""
    seconds = max(0, int((now - at).total_seconds()))
    units: tuple[tuple[int, Literal["day", "hour", "minute"]], ...] = ((86400, "day"), (3600, "hour"), (60, "minute"))
    for size, unit in units:
        if seconds >= size:
            count = seconds // size
            if unit == "day" and count > 30:
                return at.strftime("%Y-%m-%d")
            return format_timedelta(
                timedelta(seconds=-count * size),
                granularity=unit,
                threshold=1e9,
                add_direction=True,
                locale=ACTIVE.get(),
            )
    return _("just now")


@guarded()
async def export_activity(ctx: Context) -> Response:
    where, _query = event_filter(ctx)
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

"""The weekly and monthly reports of a site: visitors, top sources, revenue by source, and the
change against the period before — the same numbers as the dashboard (rollups for traffic; the
revenue attribution report, last non-direct touch, for money), rendered as text and HTML.

A week is the seven UTC days before ``end`` (a Monday 00:00 UTC when sent by the cron); a month
is the calendar month (UTC) before ``end`` (the 1st, 00:00 UTC).
"""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Website
from datafast.domain.analytics.attribution import AttributionQuery, attribution_report
from datafast.domain.analytics.conversions import DEFAULT_MODEL
from datafast.domain.revenue.currency import exponent
from datafast.domain.revenue.trust import client_revenue
from datafast.lib.eventstore import EventStore

__all__ = ("Report", "build_monthly_report", "build_weekly_report", "render_report")

WEEK = timedelta(days=7)

_TOTALS = (
    "SELECT uniqCombined64Merge(15)(visitors), sum(pageviews) FROM sessions_hourly"
    " WHERE website_id = {site:UUID} AND dimension = ''"
    " AND hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}"
)
_SOURCES = (
    "SELECT value, uniqCombined64Merge(15)(visitors) AS v FROM sessions_hourly"
    " WHERE website_id = {site:UUID} AND dimension = 'source'"
    " AND hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}"
    " GROUP BY value HAVING sum(visits) > 0 ORDER BY v DESC, value LIMIT 5"
)


@dataclass(frozen=True, slots=True)
class Report:
    period: Literal["week", "month"]
    website_id: uuid.UUID
    domain: str
    start: datetime
    end: datetime
    previous_start: datetime
    currency: str
    visitors: int
    previous_visitors: int
    pageviews: int
    revenue: int
    """Net revenue in the site's currency, minor units."""
    previous_revenue: int
    top_sources: list[tuple[str, int]]
    """(source, visitors), most first; ``Direct`` for visits without a referrer."""
    revenue_by_source: list[tuple[str, int]]
    """(source, revenue), most first; ``Unknown source`` for payments linked to no visit."""


async def _traffic(store: EventStore, site: uuid.UUID, start: datetime, end: datetime) -> tuple[int, int]:
    rows = (await store.query(_TOTALS, {"site": str(site), "start": start, "end": end})).result_rows
    return (int(rows[0][0] or 0), int(rows[0][1] or 0)) if rows else (0, 0)


async def _revenue(
    db: AsyncSession, store: EventStore, website: Website, start: datetime, end: datetime
) -> list[tuple[str, int]]:
    report = await attribution_report(
        store,
        AttributionQuery(
            website_id=website.id,
            currency=website.currency.upper(),
            model=DEFAULT_MODEL,
            dimension="source",
            date_from=start,
            date_to=end,
            client_revenue=await client_revenue(db, website),
        ),
    )
    rows = [(r.value or "Unknown source", r.revenue) for r in report.rows if r.revenue]
    return sorted(rows, key=lambda row: (-row[1], row[0]))


def month_start(moment: datetime) -> datetime:
    """The first instant of ``moment``'s calendar month."""
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def build_weekly_report(db: AsyncSession, store: EventStore, website: Website, end: datetime) -> Report:
    return await _build("week", db, store, website, end - WEEK, end, end - 2 * WEEK)


async def build_monthly_report(
    db: AsyncSession, store: EventStore, website: Website, end: datetime
) -> Report:
    """The calendar month before ``end`` (its 1st, 00:00 UTC), against the month before that."""
    start = month_start(month_start(end) - timedelta(days=1))
    return await _build(
        "month", db, store, website, start, month_start(end), month_start(start - timedelta(days=1))
    )


async def _build(
    period: Literal["week", "month"],
    db: AsyncSession,
    store: EventStore,
    website: Website,
    start: datetime,
    end: datetime,
    previous_start: datetime,
) -> Report:
    visitors, pageviews = await _traffic(store, website.id, start, end)
    previous_visitors, _ = await _traffic(store, website.id, previous_start, start)
    sources = (await store.query(_SOURCES, {"site": str(website.id), "start": start, "end": end})).result_rows
    revenue = await _revenue(db, store, website, start, end)
    previous = await _revenue(db, store, website, previous_start, start)
    return Report(
        period=period,
        website_id=website.id,
        domain=website.domain,
        start=start,
        end=end,
        previous_start=previous_start,
        currency=website.currency.upper(),
        visitors=visitors,
        previous_visitors=previous_visitors,
        pageviews=pageviews,
        revenue=sum(amount for _, amount in revenue),
        previous_revenue=sum(amount for _, amount in previous),
        top_sources=[(str(value) or "Direct", int(count)) for value, count in sources],
        revenue_by_source=revenue,
    )


def money(amount: int, currency: str) -> str:
    digits = exponent(currency)
    return f"{amount / 10**digits:,.{digits}f} {currency}"


def change(now: int, before: int) -> str:
    """``+25%``, ``-10%``, ``no change``, or ``new`` when there was nothing the week before."""
    if before == 0:
        return "new" if now else "no change"
    percent = round((now - before) * 100 / before)
    return "no change" if percent == 0 else f"{percent:+d}%"


def render_report(report: Report, dashboard_url: str, unsubscribe_url: str) -> tuple[str, str, str]:
    """(subject, text, html) of the report mail."""
    if report.period == "month":
        period = f"{report.start:%B %Y}"
    else:
        period = f"{report.start:%b %d} to {(report.end - timedelta(days=1)):%b %d, %Y}"
    subject = f"{report.domain}: your {report.period} on DataFast ({period})"
    versus = f"vs previous {report.period}"
    visitors = f"{report.visitors:,} ({change(report.visitors, report.previous_visitors)} {versus})"
    revenue = (
        f"{money(report.revenue, report.currency)} "
        f"({change(report.revenue, report.previous_revenue)} {versus})"
    )
    lines = [
        f"{report.domain} — {period}",
        "",
        f"Visitors: {visitors}",
        f"Pageviews: {report.pageviews:,}",
        f"Revenue: {revenue}",
        "",
        "Top sources (visitors):",
        *(f"  {name}: {count:,}" for name, count in report.top_sources),
        *([] if report.top_sources else ["  none"]),
        "",
        "Revenue by source:",
        *(f"  {name}: {money(amount, report.currency)}" for name, amount in report.revenue_by_source),
        *([] if report.revenue_by_source else ["  none"]),
        "",
        f"Dashboard: {dashboard_url}",
        f"Unsubscribe from these reports: {unsubscribe_url}",
    ]
    e = html.escape

    def table(title: str, rows: list[tuple[str, str]]) -> str:
        body = "".join(f"<tr><td>{e(a)}</td><td align='right'>{e(b)}</td></tr>" for a, b in rows)
        return f"<h3>{e(title)}</h3><table>{body or '<tr><td>none</td></tr>'}</table>"

    page = (
        f"<html><body><h2>{e(report.domain)} — {e(period)}</h2>"
        f"<p>Visitors: <b>{e(visitors)}</b><br>Pageviews: <b>{report.pageviews:,}</b><br>"
        f"Revenue: <b>{e(revenue)}</b></p>"
        + table("Top sources (visitors)", [(n, f"{c:,}") for n, c in report.top_sources])
        + table("Revenue by source", [(n, money(a, report.currency)) for n, a in report.revenue_by_source])
        + f"<p><a href='{e(dashboard_url)}'>Open the dashboard</a></p>"
        f"<p><small><a href='{e(unsubscribe_url)}'>Unsubscribe from these reports</a></small></p>"
        "</body></html>"
    )
    return subject, "\n".join(lines) + "\n", page

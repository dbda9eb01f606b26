"""The Stats API: ``/api/v1/sites/{website_id}/…`` metrics, time series, breakdowns, visitors,
revenue, goal conversions, funnels and the general query.

Access is checked by :func:`datafast.server.auth.site_scope_guard` (session cookie, API key
or a share link: any member may read). Each user may make ``STATS_RATE_LIMIT`` requests a
minute, counted together over all their API keys and sessions (one bucket per user, so more
keys never mean more requests); a share link's viewers are counted per client IP (one busy
viewer does not lock the others out). 429 with ``Retry-After`` beyond. Results are cached
for ``STATS_CACHE_TTL`` seconds, and dropped as soon as new data for the site is written.

A share link reads aggregates only: the visitor list and profiles are not share routes (404 to
it), and a breakdown or filter by a property that identifies a person (``prop:email_hash``,
``prop:user_id``…) answers 403 (see ``SiteContext.public``).

GET routes take the date range as ``period`` (``today``, ``7d``, ``30d``, ``month``…) or
``start_date`` + ``end_date`` (site-local days, both included), and filters as repeated
``filter`` parameters: ``source==Google|Bing`` (is), ``country!=FR`` (is not),
``page=~blog`` (contains), ``page!~/admin`` (does not contain).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, TypeAlias

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Website
from datafast.domain.analytics.cache import ResultCache
from datafast.domain.analytics.catalog import GoalDefinition, dimension
from datafast.domain.analytics.funnels import FunnelService, funnel_read
from datafast.domain.analytics.queries import AnalyticsQueries
from datafast.domain.analytics.schemas import (
    Attribution,
    DateRange,
    Filter,
    FunnelCreate,
    FunnelRead,
    FunnelResult,
    FunnelUpdate,
    GoalsResponse,
    Interval,
    Journeys,
    MetricsResponse,
    Operator,
    OrderBy,
    Period,
    PropertyKeys,
    QueryRequest,
    QueryResponse,
    RevenueResponse,
    TimeseriesResponse,
    VisitorList,
    VisitorProfile,
)
from datafast.domain.analytics.service import SiteContext, StatsService
from datafast.domain.revenue.trust import client_revenue
from datafast.domain.sites.goals import list_goals
from datafast.errors import InvalidInput, NotFound, TooManyRequests
from datafast.lib.adapters import Adapters
from datafast.lib.clientip import client_ip, rate_limit_subject
from datafast.server.auth import Principal, authenticate
from datafast.settings import Settings

__all__ = ("FunnelController", "StatsController", "rate_limit_key", "stats_rate_limit")

Db: TypeAlias = NamedDependency[AsyncSession]
SITE_EXAMPLE = "5f0c6a8e-7a53-4c1e-9d55-8a1f3f7f2b10"

# --- shared parameters ----------------------------------------------------------------------

PeriodParam = Annotated[
    Period | None,
    QueryParameter(
        name="period",
        description="A preset ending today in the site's timezone (default 30d). "
        "Ignored when start_date and end_date are given.",
        examples=[Example(value="30d")],
    ),
]
StartParam = Annotated[
    date | None,
    QueryParameter(
        name="start_date",
        description="First day (site-local, included)",
        examples=[Example(value="2026-10-01")],
    ),
]
EndParam = Annotated[
    date | None,
    QueryParameter(
        name="end_date",
        description="Last day (site-local, included)",
        examples=[Example(value="2026-10-31")],
    ),
]
FilterParam = Annotated[
    list[str] | None,
    QueryParameter(
        name="filter",
        description="Repeatable: `dimension==a|b` (is), `!=` (is not), `=~` (contains), `!~` (does not "
        "contain). Dimensions: source, channel, referrer, utm_source, utm_medium, utm_campaign, utm_term, "
        "utm_content, page, entry_page, exit_page, hostname, country, region, city, device, browser, os, "
        "goal, prop:<key>.",
        examples=[Example(value=["source==Google|Bing", "country!=FR"])],
    ),
]
LimitParam = Annotated[int, QueryParameter(name="limit", ge=1, le=1000, description="Rows per page")]
OffsetParam = Annotated[int, QueryParameter(name="offset", ge=0, le=1_000_000, description="Rows to skip")]
CompareParam = Annotated[
    bool, QueryParameter(name="compare", description="Also answer the previous period of the same length")
]
AttributionParam = Annotated[
    Attribution,
    QueryParameter(
        name="attribution",
        description="Which visit a payment is credited to, for revenue metrics in a breakdown or under a "
        "filter: `first`, `last` or `last_non_direct` (default) visit of the lookback window — the same "
        "models as /revenue/attribution.",
        examples=[Example(value="last_non_direct")],
    ),
]
LookbackParam = Annotated[
    int,
    QueryParameter(
        name="lookback_days",
        ge=1,
        le=365,
        description="How many days before a payment its visits count (default 30)",
        examples=[Example(value=30)],
    ),
]

_FILTER = re.compile(r"^(?P<dimension>[^=!~]+?)(?P<op>==|!=|=~|!~)(?P<values>.*)$", re.DOTALL)
_OPERATORS: dict[str, Operator] = {"==": "is", "!=": "is_not", "=~": "contains", "!~": "not_contains"}


def _invalid(key: str, message: str) -> InvalidInput:
    return InvalidInput(message, extra={"errors": [{"key": key, "message": message}]})


MAX_FILTERS = 20


def parse_filters(raw: list[str] | None) -> list[Filter]:
    """GET filters → the same :class:`Filter` a POST query body holds, under the same limits
    (at most 20 filters of at most 50 values of 500 characters each): too many is a 400."""
    if raw and len(raw) > MAX_FILTERS:
        raise _invalid("filter", f"at most {MAX_FILTERS} filters")
    filters = []
    for item in raw or []:
        match = _FILTER.match(item)
        values = [v for v in match.group("values").split("|") if v] if match else []
        if match is None or not values or len(item) > 2000:
            raise _invalid("filter", f"{item[:100]!r} is not a filter like source==Google or page=~blog")
        try:
            # Built through msgspec so the Struct's limits apply as they do to a POSTed body.
            parsed = msgspec.convert(
                {
                    "dimension": match.group("dimension").strip(),
                    "operator": _OPERATORS[match.group("op")],
                    "values": values,
                },
                Filter,
            )
        except msgspec.ValidationError as exc:
            raise _invalid("filter", f"{item[:100]!r}: {exc}") from None
        filters.append(parsed)
    return filters


def date_range(period: Period | None, start: date | None, end: date | None) -> DateRange | Period:
    if start is not None or end is not None:
        if start is None or end is None:
            raise _invalid("start_date", "give both start_date and end_date, or a period")
        return DateRange(start=start, end=end)
    return period or "30d"


def parse_metrics(raw: str | None, default: list[str]) -> list[str]:
    if not raw:
        return default
    return [m.strip() for m in raw.split(",") if m.strip()][:20]


@dataclass(frozen=True, slots=True)
class Report:
    """What every report route reads from its query: the dates and the filters."""

    date_range: DateRange | Period
    filters: list[Filter]


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class Crediting:
    """Which visit money is credited to (revenue metrics in breakdowns and under filters)."""

    attribution: Attribution
    lookback_days: int


def provide_report(
    period: PeriodParam = None,
    start_date: StartParam = None,
    end_date: EndParam = None,
    filters: FilterParam = None,
) -> Report:
    return Report(date_range(period, start_date, end_date), parse_filters(filters))


def provide_page(limit: LimitParam = 100, offset: OffsetParam = 0) -> Page:
    return Page(limit, offset)


def provide_crediting(
    attribution: AttributionParam = "last_non_direct", lookback_days: LookbackParam = 30
) -> Crediting:
    return Crediting(attribution, lookback_days)


async def provide_site(
    website: NamedDependency[Website],
    db_session: NamedDependency[AsyncSession],
    principal: NamedDependency[Principal],
) -> SiteContext:
    """The site a stats route reads: its timezone, currency, goal definitions, whether tracker
    revenue counts (revenue.trust), and whether a share link reads it (aggregates only)."""
    goals = tuple(
        GoalDefinition(g.name, "pageview" if g.kind == "pageview" else "event", g.path or g.event_name or "")
        for g in await list_goals(db_session, website.id)
    )
    return SiteContext(
        str(website.id),
        website.timezone,
        website.currency,
        goals,
        client_revenue=await client_revenue(db_session, website),
        public=principal.kind == "share",
    )


# --- dependencies and guards ----------------------------------------------------------------


def provide_stats(state: State, settings: NamedDependency[Settings]) -> StatsService:
    adapters: Adapters = state.adapters
    return StatsService(
        AnalyticsQueries(adapters.event_store, local_days=state.local_days),
        ResultCache(adapters.cache, settings.stats_cache_ttl),
    )


def rate_limit_key(principal: Principal, ip: str) -> str:
    """The bucket a Stats API request counts in: its user's, or its share link's for this client
    (IPv4 address or IPv6 /64)."""
    if principal.user is not None:
        return f"stats:user:{principal.user.id}"
    return f"stats:share:{principal.share_link_id}:{rate_limit_subject(ip)}"


async def stats_rate_limit(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard (after the site check): ``STATS_RATE_LIMIT`` requests a minute per user or share viewer."""
    principal = await authenticate(connection)
    if principal is None:  # the site guard already answered 401; kept for safety
        return
    peer = connection.client.host if connection.client else None
    ip = client_ip(peer, connection.headers.get("x-forwarded-for"), connection.app.state.trusted_proxies)
    settings: Settings = connection.app.state.settings
    adapters: Adapters = connection.app.state.adapters
    verdict = await adapters.rate_limiter.hit(rate_limit_key(principal, ip), settings.stats_rate_limit, 60)
    if not verdict.allowed:
        raise TooManyRequests(
            f"More than {settings.stats_rate_limit} Stats API requests a minute", verdict.retry_after
        )


STATS_DEPENDENCIES = {
    "stats": Provide(provide_stats, sync_to_thread=False),
    "site": Provide(provide_site),
    "report": Provide(provide_report, sync_to_thread=False),
    "page": Provide(provide_page, sync_to_thread=False),
    "crediting": Provide(provide_crediting, sync_to_thread=False),
}
Stats: TypeAlias = NamedDependency[StatsService]
SiteWebsite: TypeAlias = NamedDependency[Website]
Site: TypeAlias = NamedDependency[SiteContext]
Reported: TypeAlias = NamedDependency[Report]
Paged: TypeAlias = NamedDependency[Page]
Credited: TypeAlias = NamedDependency[Crediting]

QUERY_EXAMPLE = {
    "metrics": ["visitors", "revenue", "conversion_rate"],
    "dimensions": ["source"],
    "filters": [{"dimension": "country", "operator": "is", "values": ["US", "CA"]}],
    "date_range": {"start": "2026-10-01", "end": "2026-10-31"},
    "order_by": [{"field": "revenue", "direction": "desc"}],
    "limit": 10,
    "attribution": "last_non_direct",
    "lookback_days": 30,
}
QUERY_RESPONSE_EXAMPLE = {
    "date_range": {
        "start": "2026-10-01",
        "end": "2026-10-31",
        "timezone": "Europe/Paris",
        "start_utc": "2026-09-30T22:00:00Z",
        "end_utc": "2026-10-31T23:00:00Z",
    },
    "currency": "EUR",
    "metrics": ["visitors", "revenue", "conversion_rate"],
    "dimensions": ["source"],
    "rows": [
        {
            "dimensions": ["Google"],
            "metrics": {"visitors": 1204, "revenue": 389000, "conversion_rate": 0.031},
        },
        {
            "dimensions": ["Hacker News"],
            "metrics": {"visitors": 811, "revenue": 98000, "conversion_rate": 0.012},
        },
        {"dimensions": [None], "metrics": {"visitors": 0, "revenue": 12500, "conversion_rate": 0.0}},
    ],
    "has_more": False,
}
METRICS_RESPONSE_EXAMPLE = {
    "date_range": QUERY_RESPONSE_EXAMPLE["date_range"],
    "currency": "EUR",
    "totals": {
        "visitors": 5120,
        "visits": 6907,
        "pageviews": 18210,
        "bounce_rate": 0.41,
        "visit_duration": 96.5,
        "conversions": 140,
        "conversion_rate": 0.027,
        "revenue": 612000,
        "revenue_per_visitor": 119.5,
        "purchases": 152,
        "average_order_value": 4210.5,
        "new_revenue": 498000,
        "renewal_revenue": 114000,
        "refunds": 28000,
    },
    "current_visitors": 7,
    "current_through": 1767225600.123,
}
FUNNEL_EXAMPLE = {
    "name": "Pricing to signup",
    "steps": [{"kind": "page", "value": "/pricing"}, {"kind": "goal", "value": "signup"}],
    "window_seconds": 3600,
}


class StatsController(Controller):
    path = "/api/v1/sites/{website_id:uuid}"
    tags = ["stats"]
    guards = [stats_rate_limit]
    dependencies = STATS_DEPENDENCIES
    opt = {"share": True}

    @get(
        "/metrics",
        summary="Totals of every metric for a date range",
        description="Visitors, visits, pageviews, views per visit, bounce rate, visit duration, events, "
        "conversions, conversion rate, revenue (minor units of `currency`), revenue per visitor, purchases, "
        "average order value, new and renewal revenue, refunds; plus the visitors of the last 5 minutes. "
        "Revenue is money received: provider payments net of refunds, plus tracker revenue events whose "
        "transaction id no payment carries (README, Revenue).",
        responses={200: ResponseSpec(MetricsResponse, examples=[Example(value=METRICS_RESPONSE_EXAMPLE)])},
    )
    async def metrics(
        self,
        site: Site,
        stats: Stats,
        report: Reported,
        crediting: Credited,
        metrics: Annotated[
            str | None,
            QueryParameter(
                name="metrics",
                description="Comma-separated; default all",
                examples=[Example(value="visitors,revenue")],
            ),
        ] = None,
        compare: CompareParam = False,
    ) -> MetricsResponse:
        return await stats.metrics(
            site,
            report.date_range,
            report.filters,
            parse_metrics(metrics, []) or None,
            compare,
            crediting.attribution,
            crediting.lookback_days,
        )

    @get("/timeseries", summary="Metrics per hour, day, week or month (empty buckets filled with 0)")
    async def timeseries(
        self,
        site: Site,
        stats: Stats,
        report: Reported,
        crediting: Credited,
        interval: Annotated[
            Interval, QueryParameter(name="interval", examples=[Example(value="day")])
        ] = "day",
        metrics: Annotated[
            str | None, QueryParameter(name="metrics", examples=[Example(value="visitors,visits,revenue")])
        ] = None,
        compare: CompareParam = False,
    ) -> TimeseriesResponse:
        return await stats.timeseries(
            site,
            report.date_range,
            report.filters,
            interval,
            parse_metrics(metrics, ["visitors", "visits", "pageviews", "revenue"]),
            compare,
            crediting.attribution,
            crediting.lookback_days,
        )

    @get("/breakdown", summary="Metrics per value of one dimension (top sources, pages, countries…)")
    async def breakdown(
        self,
        site: Site,
        stats: Stats,
        report: Reported,
        page: Paged,
        crediting: Credited,
        dimension_: Annotated[
            str,
            QueryParameter(name="dimension", description="Default: source", examples=[Example(value="page")]),
        ] = "source",
        metrics: Annotated[
            str | None,
            QueryParameter(
                name="metrics",
                description="Comma-separated. Default: visitors, visits, bounce_rate, visit_duration, "
                "revenue for visit dimensions; visitors, pageviews, conversions, revenue for page, "
                "hostname, goal, prop:*",
                examples=[Example(value="visitors,revenue")],
            ),
        ] = None,
        order_by: Annotated[
            str | None,
            QueryParameter(
                name="order_by",
                description="A metric or the dimension; prefix - for descending",
                examples=[Example(value="-revenue")],
            ),
        ] = None,
    ) -> QueryResponse:
        found = dimension(dimension_)
        default = (
            ["visitors", "visits", "bounce_rate", "visit_duration", "revenue"]
            if found is None or found.scope == "session"
            else ["visitors", "pageviews", "conversions", "revenue"]
        )
        order = []
        if order_by:
            name = order_by.lstrip("-")
            order.append(
                OrderBy(
                    field=dimension_ if name == "dimension" else name,
                    direction="desc" if order_by.startswith("-") else "asc",
                )
            )
        return await stats.query(
            site,
            QueryRequest(
                metrics=parse_metrics(metrics, default),
                dimensions=[dimension_],
                filters=report.filters,
                date_range=report.date_range,
                order_by=order,
                limit=page.limit,
                offset=page.offset,
                attribution=crediting.attribution,
                lookback_days=crediting.lookback_days,
            ),
        )

    @post(
        "/query",
        status_code=HTTP_200_OK,
        opt={"read": True},
        summary="The general query: any metrics, dimensions, filters, range, interval, comparison",
        description="No dimensions: `totals` (and `timeseries` with an `interval`). With dimensions: `rows`, "
        "paginated with `limit`/`offset` (`has_more` tells whether there is a next page). `compare` adds "
        "the previous period of the same length.",
        responses={200: ResponseSpec(QueryResponse, examples=[Example(value=QUERY_RESPONSE_EXAMPLE)])},
    )
    async def query(
        self,
        site: Site,
        stats: Stats,
        data: Annotated[
            QueryRequest, Body(examples=[Example(summary="Revenue by source", value=QUERY_EXAMPLE)])
        ],
    ) -> QueryResponse:
        return await stats.query(site, data)

    # Individuals, not aggregates: members only, never a share link.
    @get(
        "/visitors",
        opt={"share": False},
        summary="Visitors of the range, most recent first, with their first source and totals",
    )
    async def visitors(
        self,
        site: Site,
        stats: Stats,
        report: Reported,
        page: Paged,
    ) -> VisitorList:
        return await stats.visitors(
            site,
            report.date_range,
            report.filters,
            page.limit,
            page.offset,
        )

    @get(
        "/visitors/{visitor_id:str}",
        opt={"share": False},
        summary="One visitor's journey: every visit with its pages, goals and payments",
    )
    async def visitor(
        self,
        site: Site,
        stats: Stats,
        visitor_id: Annotated[str, PathParameter(examples=[Example(value="v_3f9a1c")])],
    ) -> VisitorProfile:
        if not 0 < len(visitor_id) <= 200:
            raise NotFound("No such visitor on this site")
        return await stats.visitor(site, visitor_id)

    @get("/revenue", summary="Revenue totals and revenue per source (or any dimension)")
    async def revenue(
        self,
        site: Site,
        stats: Stats,
        report: Reported,
        page: Paged,
        crediting: Credited,
        by: Annotated[
            str,
            QueryParameter(
                name="by", description="The breakdown dimension", examples=[Example(value="utm_campaign")]
            ),
        ] = "source",
        source: Annotated[
            str | None,
            QueryParameter(
                name="source",
                description="Only this source (shortcut for filter=source==…)",
                examples=[Example(value="Google")],
            ),
        ] = None,
    ) -> RevenueResponse:
        parsed = [*report.filters]
        if source:
            parsed.append(Filter(dimension="source", values=[source]))
        return await stats.revenue(
            site,
            report.date_range,
            parsed,
            by,
            page.limit,
            page.offset,
            crediting.attribution,
            crediting.lookback_days,
        )

    @get(
        "/journeys",
        summary="The most common paths from the entry page (to a goal's completion)",
        description="Each visit's first `steps` pages in the order viewed (a page repeated in a row once). "
        "With `goal`: the visits that completed it, each path the pages viewed before the first completion.",
    )
    async def journeys(
        self,
        site: Site,
        stats: Stats,
        report: Reported,
        page: Paged,
        goal: Annotated[
            str | None,
            QueryParameter(name="goal", max_length=100, examples=[Example(value="Signup")]),
        ] = None,
        steps: Annotated[int, QueryParameter(name="steps", ge=2, le=8, examples=[Example(value=4)])] = 4,
    ) -> Journeys:
        return await stats.journeys(
            site, report.date_range, report.filters, goal or None, steps, page.limit, page.offset
        )

    @get(
        "/properties",
        summary="The custom-property keys of the range, most used first",
        description="What `GET /breakdown?dimension=prop:<key>` can break down. `identify` traits are not "
        "listed; through a share link, no key that identifies a person is.",
    )
    async def property_keys(self, site: Site, stats: Stats, report: Reported, page: Paged) -> PropertyKeys:
        return await stats.property_keys(site, report.date_range, report.filters, page.limit, page.offset)

    @get(
        "/goals/conversions", summary="Conversions per goal: converting visitors, completions, rate, revenue"
    )
    async def goals(
        self,
        site: Site,
        stats: Stats,
        report: Reported,
        page: Paged,
        goal_name: Annotated[
            str | None, QueryParameter(name="goal_name", examples=[Example(value="signup")])
        ] = None,
    ) -> GoalsResponse:
        parsed = [*report.filters]
        if goal_name:
            parsed.append(Filter(dimension="goal", values=[goal_name]))
        return await stats.goals(site, report.date_range, parsed, page.limit, page.offset)


class FunnelController(Controller):
    path = "/api/v1/sites/{website_id:uuid}/funnels"
    tags = ["funnels"]
    guards = [stats_rate_limit]
    dependencies = STATS_DEPENDENCIES

    @get("/", opt={"share": True}, summary="The site's funnels")
    async def list_funnels(self, website: SiteWebsite, db_session: Db) -> list[FunnelRead]:
        return [funnel_read(f) for f in await FunnelService(session=db_session).of_site(website.id)]

    @post("/", status_code=HTTP_201_CREATED, summary="Define a funnel (admins)")
    async def create_funnel(
        self,
        website: SiteWebsite,
        db_session: Db,
        data: Annotated[
            FunnelCreate, Body(examples=[Example(summary="Two steps within an hour", value=FUNNEL_EXAMPLE)])
        ],
    ) -> FunnelRead:
        return funnel_read(await FunnelService(session=db_session).create_funnel(website.id, data))

    @get(
        "/{funnel_id:uuid}",
        opt={"share": True},
        summary="A funnel and its results: visitors per step, conversion and drop-off",
    )
    async def funnel(
        self,
        website: SiteWebsite,
        site: Site,
        db_session: Db,
        stats: Stats,
        report: Reported,
        funnel_id: FromPath[uuid.UUID],
    ) -> FunnelResult:
        funnel = funnel_read(await FunnelService(session=db_session).get_for_site(website.id, funnel_id))
        return await stats.funnel(site, funnel, report.date_range, report.filters)

    @patch("/{funnel_id:uuid}", summary="Rename a funnel or change its steps or window (admins)")
    async def update_funnel(
        self,
        website: SiteWebsite,
        db_session: Db,
        funnel_id: FromPath[uuid.UUID],
        data: Annotated[FunnelUpdate, Body(examples=[Example(value={"window_seconds": 7200})])],
    ) -> FunnelRead:
        return funnel_read(await FunnelService(session=db_session).update_funnel(website.id, funnel_id, data))

    @delete("/{funnel_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a funnel (admins)")
    async def delete_funnel(
        self, website: SiteWebsite, db_session: Db, funnel_id: FromPath[uuid.UUID]
    ) -> None:
        await FunnelService(session=db_session).delete_funnel(website.id, funnel_id)

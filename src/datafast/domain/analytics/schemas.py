"""Stats API request and response types (msgspec Structs; Litestar builds the OpenAPI schema from them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

__all__ = (
    "Attribution",
    "AttributionReport",
    "AttributionRow",
    "Bucket",
    "DateRange",
    "Filter",
    "FunnelCreate",
    "FunnelRead",
    "FunnelResult",
    "FunnelStep",
    "FunnelStepResult",
    "FunnelUpdate",
    "GoalsResponse",
    "MetricsResponse",
    "Operator",
    "OrderBy",
    "QueryRequest",
    "QueryResponse",
    "ResolvedRange",
    "RevenueResponse",
    "Row",
    "TimeseriesResponse",
    "VisitorEvent",
    "VisitorList",
    "VisitorProfile",
    "VisitorSession",
    "VisitorSummary",
)

Operator = Literal["is", "is_not", "contains", "not_contains"]
Interval = Literal["hour", "day", "week", "month"]
Period = Literal["today", "yesterday", "7d", "30d", "90d", "month", "last_month", "12mo"]
Number = int | float
Attribution = Literal["first", "last", "last_non_direct"]


class Filter(msgspec.Struct, forbid_unknown_fields=True):
    """``dimension`` is a dimension name (``source``, ``page``, ``prop:plan``…); a visit or event
    matches ``is`` when its value is one of ``values``, ``contains`` when it contains one of them
    (case-insensitive)."""

    dimension: Annotated[str, msgspec.Meta(max_length=120, examples=["source"])]
    values: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=500)]], msgspec.Meta(min_length=1, max_length=50)
    ]
    operator: Operator = "is"


class DateRange(msgspec.Struct, forbid_unknown_fields=True):
    """Calendar days in the site's timezone, both included."""

    start: date
    end: date


class OrderBy(msgspec.Struct, forbid_unknown_fields=True):
    field: Annotated[str, msgspec.Meta(max_length=120, examples=["visitors"])]
    direction: Literal["asc", "desc"] = "desc"


class QueryRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The general query. No dimensions: totals (and a time series with ``interval``).
    Dimensions: a breakdown, paginated by ``limit``/``offset`` and ordered by ``order_by``."""

    metrics: Annotated[list[str], msgspec.Meta(min_length=1, max_length=20)] = msgspec.field(
        default_factory=lambda: ["visitors"]
    )
    dimensions: Annotated[list[str], msgspec.Meta(max_length=3)] = msgspec.field(default_factory=list)
    filters: Annotated[list[Filter], msgspec.Meta(max_length=20)] = msgspec.field(default_factory=list)
    date_range: DateRange | Period = "30d"
    interval: Interval | None = None
    compare: Literal["previous_period"] | None = None
    order_by: Annotated[list[OrderBy], msgspec.Meta(max_length=5)] = msgspec.field(default_factory=list)
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    offset: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    attribution: Annotated[
        Attribution,
        msgspec.Meta(
            description="Which visit a payment is credited to in a breakdown, or under a filter: the "
            "first or last visit of the lookback window, or the last one that was not direct "
            "(the default). The same models as /revenue/attribution.",
            examples=["last_non_direct"],
        ),
    ] = "last_non_direct"
    lookback_days: Annotated[
        int,
        msgspec.Meta(
            ge=1, le=365, description="How far back before a payment its visits count", examples=[30]
        ),
    ] = 30


class ResolvedRange(msgspec.Struct):
    start: date
    end: date
    timezone: str
    start_utc: datetime
    end_utc: datetime
    """Exclusive."""


class Row(msgspec.Struct):
    dimensions: list[str | None]
    """``null``: money credited to no visit (no visitor linked, or no visit in the lookback window)."""
    metrics: dict[str, Number]


class Bucket(msgspec.Struct):
    bucket: str
    """Local start of the bucket: ``2026-03-29`` (day, week = its Monday, month = its 1st) or
    ``2026-03-29T03:00+0200`` (hour, with the UTC offset so a repeated DST hour stays distinct)."""
    metrics: dict[str, Number]


class Comparison(msgspec.Struct):
    date_range: ResolvedRange
    totals: dict[str, Number]
    timeseries: list[Bucket] | None = None
    rows: list[Row] | None = None
    """For a breakdown: the same rows (same order) over the previous period, zeros where a value
    had no data then."""


class ImportedUse(msgspec.Struct):
    """History imported from another tool (Plausible, Umami, GA4) for days of this range before
    the site's first native event. ``included``: whether this answer adds it (see README
    "Imports": not under filters, hourly series, or other dimensions — ``note`` says why)."""

    included: bool
    first_day: date
    last_day: date
    note: str | None = None


class QueryResponse(msgspec.Struct):
    date_range: ResolvedRange
    currency: str
    """Revenue metrics are in minor units (cents) of this currency."""
    metrics: list[str]
    dimensions: list[str]
    totals: dict[str, Number] | None = None
    timeseries: list[Bucket] | None = None
    rows: list[Row] | None = None
    has_more: bool = False
    comparison: Comparison | None = None
    imported: ImportedUse | None = None


class MetricsResponse(msgspec.Struct):
    date_range: ResolvedRange
    currency: str
    totals: dict[str, Number]
    current_visitors: int
    """Distinct visitors with an event in the last 5 minutes."""
    current_through: float | None = None
    """When the newest event counted in ``current_visitors`` happened (Unix seconds; None: none):
    the live feed's events up to then are in the count, later ones are not yet."""
    comparison: Comparison | None = None
    imported: ImportedUse | None = None


class TimeseriesResponse(msgspec.Struct):
    date_range: ResolvedRange
    currency: str
    interval: Interval
    timeseries: list[Bucket]
    comparison: Comparison | None = None
    imported: ImportedUse | None = None


class RevenueResponse(msgspec.Struct):
    date_range: ResolvedRange
    currency: str
    totals: dict[str, Number]
    by: str
    rows: list[Row]
    has_more: bool


class GoalsResponse(msgspec.Struct):
    date_range: ResolvedRange
    currency: str
    rows: list[Row]
    """One row per goal: visitors who completed it (``conversions``), times completed
    (``events``), ``conversion_rate`` (converting visitors / all visitors), ``revenue``."""
    has_more: bool


class JourneyPath(msgspec.Struct):
    pages: list[str]
    """From the entry page, in the order viewed (a page repeated in a row once)."""
    more: bool
    """The visits went on to further pages (beyond ``steps``, or before the goal)."""
    visits: int
    conversions: int
    """Of these visits, those that completed the goal (any goal when none is asked)."""


class Journeys(msgspec.Struct):
    """The most common paths through the site: a step table from entry to conversion."""

    date_range: ResolvedRange
    goal: str | None
    """Only visits that completed this goal, their path up to its first completion."""
    steps: int
    visits: int
    """All the visits counted (with a goal: those that completed it), of which each path's share."""
    paths: list[JourneyPath]
    has_more: bool


class PropertyKey(msgspec.Struct):
    key: str
    events: int
    """Events of the range carrying it."""


class PropertyKeys(msgspec.Struct):
    """The custom-property keys seen in a range: what a breakdown by ``prop:<key>`` can show."""

    date_range: ResolvedRange
    keys: list[PropertyKey]
    has_more: bool


class VisitorSummary(msgspec.Struct):
    visitor_id: str
    first_seen: datetime
    last_seen: datetime
    source: str
    """Source of the first event seen in the range."""
    channel: str
    country: str
    device: str
    visits: int
    pageviews: int
    events: int
    conversions: int
    revenue: int
    user_id: str = ""
    """From the visitor's latest ``identify`` call (empty: never identified)."""
    name: str = ""


class VisitorList(msgspec.Struct):
    date_range: ResolvedRange
    currency: str
    visitors: list[VisitorSummary]
    has_more: bool


class VisitorEvent(msgspec.Struct):
    timestamp: datetime
    session_id: str
    event_type: str
    event_name: str
    pathname: str
    goal_name: str
    revenue: int
    """What the tracker reported (unverified)."""
    currency: str
    counted_revenue: int = 0
    """What it counts for in money metrics: the site's policy for tracker revenue (README)."""


class VisitorSession(msgspec.Struct):
    session_id: str
    started_at: datetime
    ended_at: datetime
    duration: int
    pageviews: int
    events: int
    is_bounce: bool
    entry_page: str
    exit_page: str
    referrer: str
    source: str
    channel: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    country: str
    device: str
    browser: str
    os: str
    goals: int
    revenue: int
    journey: list[VisitorEvent]
    """This visit's events in order: pages, goals, payments."""


class VisitorProfile(msgspec.Struct):
    visitor_id: str
    first_seen: datetime | None
    last_seen: datetime | None
    first_source: str
    visits: int
    pageviews: int
    goals: int
    revenue: int
    currency: str
    sessions: list[VisitorSession]
    other_events: list[VisitorEvent]
    """Events whose visit has no sessions row (e.g. a payment recorded server-side)."""
    user_id: str = ""
    """From the visitor's latest ``identify`` call (empty: never identified)."""
    name: str = ""


class FunnelStep(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["page", "goal"]
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=500, examples=["/pricing"])]


class FunnelCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    steps: Annotated[list[FunnelStep], msgspec.Meta(min_length=2, max_length=10)]
    window_seconds: Annotated[int, msgspec.Meta(ge=60, le=90 * 86400)] = 86400


class FunnelUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    steps: Annotated[list[FunnelStep], msgspec.Meta(min_length=2, max_length=10)] | None = None
    window_seconds: Annotated[int, msgspec.Meta(ge=60, le=90 * 86400)] | None = None


class FunnelRead(msgspec.Struct):
    id: str
    website_id: str
    name: str
    steps: list[FunnelStep]
    window_seconds: int
    created_at: datetime


class FunnelStepResult(msgspec.Struct):
    kind: Literal["page", "goal"]
    value: str
    visitors: int
    """Visitors who reached this step after the previous ones, within the window."""
    conversion_rate: float
    """Of the visitors who entered the funnel (step 1)."""
    dropoff: int
    """Visitors of the previous step who did not reach this one (0 for step 1)."""
    dropoff_rate: float


class FunnelResult(msgspec.Struct):
    funnel: FunnelRead
    date_range: ResolvedRange
    steps: list[FunnelStepResult]


class AttributionRow(msgspec.Struct):
    value: str | None
    """The dimension's value; null for revenue not linked to any visit in the window."""
    revenue: int
    """Net revenue (payments less refunds) in the site's currency, minor units."""
    new_revenue: int
    renewal_revenue: int
    refunds: int
    payments: int
    customers: int
    visitors: int
    conversion_rate: float
    revenue_per_visitor: float
    average_order_value: float


class AttributionReport(msgspec.Struct):
    model: str
    dimension: str
    currency: str
    lookback_days: int
    date_from: datetime
    date_to: datetime
    rows: list[AttributionRow]

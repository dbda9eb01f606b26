"""Stats rules: validating queries, site-local date ranges, buckets, comparisons, caching.

Metric definitions (README "Stats API" has the user-facing version):

- Totals and time series: ``visitors``, ``pageviews`` and ``events`` count *events in the
  range*; ``visits``, ``bounce_rate``, ``visit_duration`` and ``views_per_visit`` count *visits
  that started in the range* (a visit is counted once, in the bucket where it started).
- Money metrics (``revenue``, ``new_revenue``, ``renewal_revenue``, ``refunds``, ``purchases``,
  ``average_order_value``, ``revenue_per_visitor``, ``conversions``, ``conversion_rate``) count
  *money received in the range*, by payment time: the conversions of
  :mod:`datafast.domain.analytics.conversions` (payments net of refunds, plus tracker revenue no
  payment carries). ``conversions``: visitors with a goal or purchase event, or a payment.
- Breakdowns by a visit attribute (source, UTM, entry/exit page, geography, device…) count
  the visits that started in the range; their money is the money credited to a visit of that
  value under the request's attribution model (the numbers of ``/revenue/attribution``).
- Breakdowns by an event attribute (page, hostname, goal, prop) count the events in the range;
  visits there are the distinct visits among those events; money counts for every value among
  the events of its credited visit.
- Under a filter, money counts when its credited visit matches.
- A share link (``SiteContext.public``) reads aggregates only: no visitor list or profile, no
  breakdown or filter by an identity property (403), no property value of an ``identify`` event.

Date ranges are site-local calendar days (:mod:`datafast.domain.analytics.dates`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

from datafast.domain.analytics import imported
from datafast.domain.analytics.cache import ResultCache
from datafast.domain.analytics.catalog import (
    EVENT_METRICS,
    IDENTITY_PROPS,
    METRICS,
    MONEY_METRICS,
    PAGE_METRICS,
    REVENUE_METRICS,
    SESSION_METRICS,
    VISIT_METRICS,
    Dimension,
    GoalDefinition,
    dimension,
    is_identity_prop,
)
from datafast.domain.analytics.conversions import DEFAULT_CLIENT_REVENUE, DEFAULT_LOOKBACK_DAYS, ClientRevenue
from datafast.domain.analytics.dates import bucket_labels, previous_period, resolve_range
from datafast.domain.analytics.queries import AnalyticsQueries, FilterSpec, FunnelStepSpec, QuerySpec
from datafast.domain.analytics.schemas import (
    Attribution,
    Bucket,
    Comparison,
    DateRange,
    Filter,
    FunnelRead,
    FunnelResult,
    FunnelStepResult,
    GoalsResponse,
    ImportedUse,
    Interval,
    JourneyPath,
    Journeys,
    MetricsResponse,
    OrderBy,
    Period,
    PropertyKey,
    PropertyKeys,
    QueryRequest,
    QueryResponse,
    ResolvedRange,
    RevenueResponse,
    Row,
    TimeseriesResponse,
    VisitorEvent,
    VisitorList,
    VisitorProfile,
    VisitorSession,
    VisitorSummary,
)
from datafast.errors import Forbidden, InvalidInput, NotFound

__all__ = ("SiteContext", "StatsService")

T = TypeVar("T")
_IMPORTED_BOUNDS: ContextVar[dict[tuple[str, str], Any] | None] = ContextVar("imported_bounds", default=None)
"""Per ``_run`` (a context, not shared state): the imported bounds its totals, series and rows share."""
_BOUNDS: Any = tuple[date, date, date | None] | None
"""The imported bounds' type, as the result cache decodes them."""
MAX_HOUR_DAYS = 31
CURRENT_WINDOW = timedelta(minutes=5)
MAX_COMPARED_ROWS = 10_000


@dataclass(frozen=True, slots=True)
class SiteContext:
    id: str
    timezone: str
    currency: str
    goals: tuple[GoalDefinition, ...] = ()
    """The goals set up in the site's settings (tracker goals need none)."""
    client_revenue: ClientRevenue = DEFAULT_CLIENT_REVENUE
    """Whether tracker (unverified) revenue counts, and its cap: :mod:`datafast.domain.revenue.trust`."""
    public: bool = False
    """Read through a share link: aggregates only. No visitor list or profile, no breakdown or
    filter by a property that identifies a person, and no ``identify`` property values at all."""


def _invalid(key: str, message: str) -> InvalidInput:
    return InvalidInput(message, extra={"errors": [{"key": key, "message": message}]})


def _value(value: Any) -> str | None:
    """A dimension value; None for money credited to no visit."""
    return None if value is None else str(value)


def _number(value: Any) -> int | float:
    return value if isinstance(value, int) else float(value)


class StatsService:
    """What the Stats API routes call. Holds the rules; the SQL is in :mod:`queries`."""

    def __init__(
        self,
        queries: AnalyticsQueries,
        cache: ResultCache | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        concurrent: bool = True,
    ) -> None:
        self.queries = queries
        self.cache = cache
        self.clock = clock
        self.concurrent = concurrent
        """Run the independent queries of one answer (events, visits, money) at once: ClickHouse
        answers them side by side (``bench/query.py`` measures it against ``False``)."""

    async def _all(self, *queries: Awaitable[T]) -> list[T]:
        if self.concurrent:
            return list(await asyncio.gather(*queries))
        return [await query for query in queries]

    # --- validation -----------------------------------------------------------------------

    @staticmethod
    def _metrics(names: Sequence[str]) -> tuple[str, ...]:
        for name in names:
            if name not in METRICS and name not in PAGE_METRICS:
                known = ", ".join((*METRICS, *PAGE_METRICS))
                raise _invalid("metrics", f"unknown metric {name!r}; known: {known}")
        if len(set(names)) != len(names):
            raise _invalid("metrics", "a metric is listed twice")
        return tuple(names)

    @staticmethod
    def _dimension(name: str, key: str, public: bool = False) -> Dimension:
        found = dimension(name, public=public)
        if found is None:
            raise _invalid(key, f"unknown dimension {name!r}")
        if public and found.prop_key is not None and is_identity_prop(found.prop_key):
            raise Forbidden(f"A shared dashboard shows aggregates only: {name} identifies people")
        return found

    def _filters(self, filters: Sequence[Filter], public: bool = False) -> tuple[FilterSpec, ...]:
        return tuple(
            FilterSpec(self._dimension(f.dimension, "filters", public), f.operator, tuple(f.values))
            for f in filters
        )

    @staticmethod
    def _members_only(site: SiteContext) -> None:
        if site.public:  # the routes refuse share links already; this keeps the rule with the data
            raise Forbidden("A shared dashboard shows aggregates only, not individual visitors")

    def _spec(self, site: SiteContext, request: QueryRequest, range_: ResolvedRange) -> QuerySpec:
        metrics = self._metrics(request.metrics)
        dims = tuple(self._dimension(name, "dimensions", site.public) for name in request.dimensions)
        if len({d.name for d in dims}) != len(dims):
            raise _invalid("dimensions", "a dimension is listed twice")
        if set(PAGE_METRICS) & set(metrics) and [d.name for d in dims] != ["page"]:
            raise _invalid("metrics", "scroll_depth is a metric of the page breakdown (dimensions: page)")
        if dims:
            if request.interval is not None:
                raise _invalid("interval", "a breakdown (dimensions) cannot also have an interval")
            scopes = {d.scope for d in dims}
            if len(scopes) > 1:
                raise _invalid(
                    "dimensions",
                    "visit dimensions (source, entry_page…) and event dimensions "
                    "(page, goal, prop:…) cannot be combined in one breakdown",
                )
            allowed = SESSION_METRICS if "session" in scopes else EVENT_METRICS
            refused = [m for m in metrics if m not in allowed and m not in PAGE_METRICS]
            if refused:
                raise _invalid(
                    "metrics",
                    f"{', '.join(refused)} cannot be broken down by {', '.join(d.name for d in dims)}",
                )
        if request.interval == "hour" and (range_.end - range_.start).days >= MAX_HOUR_DAYS:
            raise _invalid("interval", f"hourly series are limited to {MAX_HOUR_DAYS} days")
        order: list[tuple[str, Literal["asc", "desc"]]] = [
            (self._order_name(item, metrics, request.dimensions), item.direction) for item in request.order_by
        ]
        return QuerySpec(
            website_id=site.id,
            timezone=site.timezone,
            start=range_.start_utc,
            end=range_.end_utc,
            metrics=metrics,
            dimensions=dims,
            filters=self._filters(request.filters, site.public),
            interval=request.interval,
            order_by=tuple(order),
            limit=request.limit + 1,  # one more to tell whether there is a next page
            offset=request.offset,
            goals=site.goals,
            currency=site.currency.upper(),
            attribution=request.attribution,
            lookback_days=request.lookback_days,
            client_revenue=site.client_revenue,
        )

    @staticmethod
    def _order_name(item: OrderBy, metrics: Sequence[str], dims: Sequence[str]) -> str:
        if item.field in metrics:
            return f"m_{item.field}"
        if item.field in dims:
            return f"d{list(dims).index(item.field)}"
        raise _invalid(
            "order_by", f"order_by.field {item.field!r} is neither a requested metric nor dimension"
        )

    # --- computing ------------------------------------------------------------------------

    @staticmethod
    def _sources(metrics: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
        """(event metrics, visit metrics, money metrics): which table answers each total."""
        money = [m for m in metrics if m in MONEY_METRICS]
        visits = [m for m in metrics if m in VISIT_METRICS]
        return [m for m in metrics if m not in money and m not in visits], visits, money

    async def _totals(self, spec: QuerySpec) -> dict[str, int | float]:
        if (days := await self._imported_window(spec)) is not None:
            native = await self._native_totals(replace(spec, metrics=imported.needed_metrics(spec)))
            rows = await self.queries.imported_rows(spec.website_id, "", *days, by_day=False)
            merged = imported.merge_row(native, rows[0] if rows else {}, spec.metrics)
            return {m: _number(merged[m]) for m in spec.metrics}
        return await self._native_totals(spec)

    async def _native_totals(self, spec: QuerySpec) -> dict[str, int | float]:
        event_metrics, visit_metrics, money_metrics = self._sources(spec.metrics)
        queries = [
            *([self.queries.aggregate_events(spec, event_metrics)] if event_metrics else []),
            *([self.queries.aggregate_visits(spec, visit_metrics)] if visit_metrics else []),
            *([self.queries.aggregate_money(spec, money_metrics)] if money_metrics else []),
        ]
        values: dict[str, Any] = {}
        for found in await self._all(*queries):
            values |= found
        return {m: _number(values[m]) for m in spec.metrics}

    async def _timeseries(self, spec: QuerySpec, range_: ResolvedRange) -> list[Bucket]:
        assert spec.interval is not None
        days = await self._imported_window(spec)
        metrics = imported.needed_metrics(spec) if days is not None else spec.metrics
        event_metrics, visit_metrics, money_metrics = self._sources(metrics)
        found: dict[str, dict[str, Any]] = {}
        queries = [
            *([self.queries.timeseries_events(spec, event_metrics)] if event_metrics else []),
            *([self.queries.timeseries_visits(spec, visit_metrics)] if visit_metrics else []),
            *([self.queries.timeseries_money(spec, money_metrics)] if money_metrics else []),
        ]
        for rows in await self._all(*queries):
            for row in rows:
                found.setdefault(row.pop("bucket"), {}).update(row)
        if days is not None:
            added: dict[str, dict[str, float]] = {}
            for row in await self.queries.imported_rows(spec.website_id, "", *days, by_day=True):
                sums = added.setdefault(imported.bucket_of(row["day"], spec.interval), {})
                for name in ("visitors", "visits", "pageviews", "bounces", "duration"):
                    sums[name] = sums.get(name, 0) + row[name]
            for label, sums in added.items():
                found[label] = imported.merge_row(found.get(label), sums, spec.metrics)
        return [
            Bucket(
                bucket=label,
                metrics={m: _number(found.get(label, {}).get(m, 0)) for m in spec.metrics},
            )
            for label in bucket_labels(range_, spec.interval)
        ]

    async def _run(self, site: SiteContext, request: QueryRequest, *, totals: bool = True) -> QueryResponse:
        """Answer ``request``; ``totals=False`` leaves a series' totals out (``/timeseries`` has none)."""
        memo = _IMPORTED_BOUNDS.set({})
        try:
            return await self._answer(site, request, totals=totals)
        finally:
            _IMPORTED_BOUNDS.reset(memo)

    async def _answer(self, site: SiteContext, request: QueryRequest, *, totals: bool) -> QueryResponse:
        range_ = resolve_range(request.date_range, site.timezone, self.clock())
        spec = self._spec(site, request, range_)
        response = QueryResponse(
            date_range=range_,
            currency=site.currency,
            metrics=list(spec.metrics),
            dimensions=request.dimensions,
        )
        response.imported = await self._imported_use(spec)
        if spec.dimensions:
            rows = await self._breakdown(spec)
            response.has_more = len(rows) > request.limit
            response.rows = [
                Row(
                    dimensions=[_value(row[f"d{i}"]) for i in range(len(spec.dimensions))],
                    metrics={m: _number(row[m]) for m in spec.metrics},
                )
                for row in rows[: request.limit]
            ]
        else:
            if totals or spec.interval is None:
                response.totals = await self._totals(spec)
            if spec.interval is not None:
                response.timeseries = await self._timeseries(spec, range_)
        if request.compare == "previous_period":
            before = previous_period(range_)
            totals_spec = replace(
                spec,
                start=before.start_utc,
                end=before.end_utc,
                dimensions=(),
                order_by=(),
                limit=100,
                offset=0,
            )
            if spec.dimensions:
                allowed = SESSION_METRICS if spec.scope == "session" else EVENT_METRICS
                totals_spec = replace(totals_spec, metrics=tuple(m for m in spec.metrics if m in allowed))
            response.comparison = Comparison(
                date_range=before,
                totals=await self._totals(totals_spec),
                timeseries=await self._timeseries(totals_spec, before) if spec.interval else None,
                rows=await self._previous_rows(spec, before, response.rows) if response.rows else None,
            )
        return response

    # --- imported history (analytics.imported) --------------------------------------------

    async def _imported_bounds(self, spec: QuerySpec) -> tuple[date, date, date | None] | None:
        """The site's imported days and first native day, looked up once per query (``_run``) and
        kept in the result cache beside its results: a dashboard's requests share one look-up, and
        an import or new events drop it with them (the site's data version)."""
        memo = _IMPORTED_BOUNDS.get()
        key = (spec.website_id, spec.timezone)
        if memo is not None and key in memo:
            known: tuple[date, date, date | None] | None = memo[key]
            return known

        async def compute() -> tuple[date, date, date | None] | None:
            return await self.queries.imported_bounds(*key)

        if self.cache is None:
            found = await compute()
        else:
            found = await self.cache.get_or_compute(
                spec.website_id, "imported_bounds", [spec.timezone], _BOUNDS, compute
            )
        if memo is not None:
            memo[key] = found
        return found

    async def _imported_window(self, spec: QuerySpec) -> tuple[date, date] | None:
        """The local days of this query answered by imported data too, or None."""
        if imported.not_merged_reason(spec) is not None:
            return None
        bounds = await self._imported_bounds(spec)
        return imported.window(spec, bounds) if bounds is not None else None

    async def _imported_use(self, spec: QuerySpec) -> ImportedUse | None:
        """What the answer says about imported data: None when the site has none for its range."""
        bounds = await self._imported_bounds(spec)
        days = imported.window(spec, bounds) if bounds is not None else None
        if days is None:
            return None
        reason = imported.not_merged_reason(spec)
        return ImportedUse(included=reason is None, first_day=days[0], last_day=days[1], note=reason)

    async def _with_imported(self, spec: QuerySpec) -> list[dict[str, Any]]:
        """The breakdown's rows, imported days merged in where they apply (see analytics.imported)."""
        days = await self._imported_window(spec)
        if days is None:
            return await self.queries.breakdown(spec)
        native = await self.queries.breakdown(
            replace(spec, metrics=imported.needed_metrics(spec), limit=imported.MAX_NATIVE_ROWS, offset=0)
        )
        by_value = {row["d0"]: row for row in native}
        extra = await self.queries.imported_rows(
            spec.website_id, spec.dimensions[0].name, *days, by_day=False
        )
        for row in extra:
            base = by_value.get(row["value"], {"d0": row["value"]})
            by_value[row["value"]] = imported.merge_row(base, row, spec.metrics)
        rows = imported.sort_rows(
            [{"d0": value, **{m: row.get(m, 0) for m in spec.metrics}} for value, row in by_value.items()],
            spec,
        )
        return rows[spec.offset : spec.offset + spec.limit]

    async def _previous_rows(self, spec: QuerySpec, before: ResolvedRange, rows: list[Row]) -> list[Row]:
        """The breakdown's rows over the previous period: only their values are asked for (all
        values of a dimension whose rows include money credited to no visit, a null value)."""
        keep = []
        for i, d in enumerate(spec.dimensions):
            values = list(dict.fromkeys(row.dimensions[i] for row in rows))
            if None not in values:
                keep.append(FilterSpec(d, "is", tuple(v for v in values if v is not None)))
        previous = replace(
            spec,
            start=before.start_utc,
            end=before.end_utc,
            filters=spec.filters + tuple(keep),
            order_by=(),
            limit=MAX_COMPARED_ROWS,
            offset=0,
        )
        found = {
            tuple(_value(r[f"d{i}"]) for i in range(len(spec.dimensions))): r
            for r in await self._breakdown(previous)
        }
        return [
            Row(
                dimensions=row.dimensions,
                metrics={m: _number(found.get(tuple(row.dimensions), {}).get(m, 0)) for m in spec.metrics},
            )
            for row in rows
        ]

    async def _breakdown(self, spec: QuerySpec) -> list[dict[str, Any]]:
        """The breakdown's rows, with the page metrics (``scroll_depth``) read beside the others."""
        asked = [m for m in spec.metrics if m in PAGE_METRICS]
        if not asked:
            return await self._with_imported(spec)
        if any(name == f"m_{m}" for name, _ in spec.order_by for m in asked):
            raise _invalid("order_by", "a breakdown cannot be ordered by scroll_depth")
        others = tuple(m for m in spec.metrics if m not in PAGE_METRICS) or ("visitors",)
        rows = await self._with_imported(replace(spec, metrics=others))
        depths = await self.queries.scroll_depths(spec, [str(row["d0"]) for row in rows])
        for row in rows:
            row["scroll_depth"] = round(depths.get(str(row["d0"]), 0.0), 1)
        return rows

    async def _cached(self, site: SiteContext, kind: str, key: Any, type_: type[Any], compute: Any) -> Any:
        if self.cache is None:
            return await compute()
        # "today" moves: the resolved clock day is part of the key.
        today = self.clock().astimezone(ZoneInfo(site.timezone)).date().isoformat()
        # public: a share link's prop values leave identify events out, so its results differ.
        return await self.cache.get_or_compute(
            site.id,
            kind,
            [site.timezone, site.goals, site.public, site.client_revenue, today, key],
            type_,
            compute,
        )

    # --- public operations ----------------------------------------------------------------

    async def query(self, site: SiteContext, request: QueryRequest) -> QueryResponse:
        result: QueryResponse = await self._cached(
            site, "query", request, QueryResponse, lambda: self._run(site, request)
        )
        return result

    async def metrics(
        self,
        site: SiteContext,
        date_range: DateRange | Period,
        filters: list[Filter],
        metrics: list[str] | None = None,
        compare: bool = False,
        attribution: Attribution = "last_non_direct",
        lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    ) -> MetricsResponse:
        request = QueryRequest(
            metrics=metrics or list(METRICS),
            filters=filters,
            date_range=date_range,
            compare="previous_period" if compare else None,
            attribution=attribution,
            lookback_days=lookback_days,
        )
        result = await self.query(site, request)
        assert result.totals is not None
        current, through = await self.queries.current_visitors(site.id, self.clock() - CURRENT_WINDOW)
        return MetricsResponse(
            date_range=result.date_range,
            currency=site.currency,
            totals=result.totals,
            current_visitors=current,
            current_through=through,
            comparison=result.comparison,
            imported=result.imported,
        )

    async def timeseries(
        self,
        site: SiteContext,
        date_range: DateRange | Period,
        filters: list[Filter],
        interval: Interval,
        metrics: list[str],
        compare: bool = False,
        attribution: Attribution = "last_non_direct",
        lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    ) -> TimeseriesResponse:
        request = QueryRequest(
            metrics=metrics,
            filters=filters,
            date_range=date_range,
            interval=interval,
            compare="previous_period" if compare else None,
            attribution=attribution,
            lookback_days=lookback_days,
        )
        result: QueryResponse = await self._cached(
            site, "timeseries", request, QueryResponse, lambda: self._run(site, request, totals=False)
        )
        assert result.timeseries is not None
        return TimeseriesResponse(
            date_range=result.date_range,
            currency=site.currency,
            interval=interval,
            timeseries=result.timeseries,
            comparison=result.comparison,
            imported=result.imported,
        )

    async def revenue(
        self,
        site: SiteContext,
        date_range: DateRange | Period,
        filters: list[Filter],
        by: str,
        limit: int,
        offset: int,
        attribution: Attribution = "last_non_direct",
        lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    ) -> RevenueResponse:
        self._dimension(by, "by", site.public)
        totals = await self.query(
            site,
            QueryRequest(
                metrics=list(REVENUE_METRICS),
                filters=filters,
                date_range=date_range,
                attribution=attribution,
                lookback_days=lookback_days,
            ),
        )
        rows = await self.query(
            site,
            QueryRequest(
                metrics=list(REVENUE_METRICS),
                dimensions=[by],
                filters=filters,
                date_range=date_range,
                order_by=[OrderBy(field="revenue")],
                limit=limit,
                offset=offset,
                attribution=attribution,
                lookback_days=lookback_days,
            ),
        )
        assert totals.totals is not None
        assert rows.rows is not None
        return RevenueResponse(
            date_range=totals.date_range,
            currency=site.currency,
            totals=totals.totals,
            by=by,
            rows=rows.rows,
            has_more=rows.has_more,
        )

    async def goals(
        self,
        site: SiteContext,
        date_range: DateRange | Period,
        filters: list[Filter],
        limit: int,
        offset: int,
    ) -> GoalsResponse:
        rows = await self.query(
            site,
            QueryRequest(
                metrics=["conversions", "events", "revenue"],
                dimensions=["goal"],
                filters=filters,
                date_range=date_range,
                limit=limit,
                offset=offset,
            ),
        )
        # Conversion rate of a goal: its converting visitors over every visitor of the range
        # (with the other filters, but not the goal filter itself).
        everyone = await self.query(
            site,
            QueryRequest(
                metrics=["visitors"],
                filters=[f for f in filters if f.dimension != "goal"],
                date_range=date_range,
            ),
        )
        assert rows.rows is not None
        assert everyone.totals is not None
        visitors = everyone.totals["visitors"]
        for row in rows.rows:
            row.metrics["conversion_rate"] = row.metrics["conversions"] / visitors if visitors else 0.0
        return GoalsResponse(
            date_range=rows.date_range, currency=site.currency, rows=rows.rows, has_more=rows.has_more
        )

    def _listing(
        self, site: SiteContext, date_range: DateRange | Period, filters: list[Filter], **more: Any
    ) -> tuple[ResolvedRange, QuerySpec]:
        """The resolved range and a spec without metrics, for the reports that list things."""
        range_ = resolve_range(date_range, site.timezone, self.clock())
        spec = QuerySpec(
            website_id=site.id,
            timezone=site.timezone,
            start=range_.start_utc,
            end=range_.end_utc,
            metrics=(),
            filters=self._filters(filters, site.public),
            goals=site.goals,
            **more,
        )
        return range_, spec

    async def journeys(
        self,
        site: SiteContext,
        date_range: DateRange | Period,
        filters: list[Filter],
        goal: str | None,
        steps: int,
        limit: int,
        offset: int,
    ) -> Journeys:
        range_, spec = self._listing(site, date_range, filters, limit=limit + 1, offset=offset)

        async def compute() -> Journeys:
            rows = await self.queries.journeys(spec, steps, goal)
            return Journeys(
                date_range=range_,
                goal=goal,
                steps=steps,
                visits=int(rows[0]["total"]) if rows else 0,
                paths=[
                    JourneyPath(list(r["path"]), bool(r["more"]), int(r["visits"]), int(r["conversions"]))
                    for r in rows[:limit]
                ],
                has_more=len(rows) > limit,
            )

        result: Journeys = await self._cached(
            site, "journeys", [date_range, filters, goal, steps, limit, offset], Journeys, compute
        )
        return result

    async def property_keys(
        self,
        site: SiteContext,
        date_range: DateRange | Period,
        filters: list[Filter],
        limit: int,
        offset: int,
    ) -> PropertyKeys:
        """The custom-property keys of the range, most used first (a share link: none that identify)."""
        # A share link drops the keys that identify a person after the query: ask for spares.
        spares = len(IDENTITY_PROPS) if site.public else 0
        range_, spec = self._listing(site, date_range, filters, limit=limit + 1 + spares, offset=offset)

        async def compute() -> PropertyKeys:
            rows = [
                PropertyKey(r["key"], int(r["events"]))
                for r in await self.queries.property_keys(spec)
                if not (site.public and is_identity_prop(r["key"]))
            ]
            return PropertyKeys(date_range=range_, keys=rows[:limit], has_more=len(rows) > limit)

        result: PropertyKeys = await self._cached(
            site, "property_keys", [date_range, filters, limit, offset], PropertyKeys, compute
        )
        return result

    async def visitors(
        self,
        site: SiteContext,
        date_range: DateRange | Period,
        filters: list[Filter],
        limit: int,
        offset: int,
    ) -> VisitorList:
        self._members_only(site)
        range_, spec = self._listing(
            site,
            date_range,
            filters,
            limit=limit + 1,
            offset=offset,
            currency=site.currency.upper(),
            client_revenue=site.client_revenue,
        )

        async def compute() -> VisitorList:
            rows = (await self.queries.visitors(spec))[: limit + 1]
            known = await self.queries.identities(site.id, [r["visitor_id"] for r in rows[:limit]])
            return VisitorList(
                date_range=range_,
                currency=site.currency,
                visitors=[
                    VisitorSummary(
                        **{
                            **row,
                            "first_seen": _aware(row["first_seen"]),
                            "last_seen": _aware(row["last_seen"]),
                        },
                        user_id=known.get(row["visitor_id"], ("", ""))[0],
                        name=known.get(row["visitor_id"], ("", ""))[1],
                    )
                    for row in rows[:limit]
                ],
                has_more=len(rows) > limit,
            )

        result: VisitorList = await self._cached(
            site, "visitors", [date_range, filters, limit, offset], VisitorList, compute
        )
        return result

    async def visitor(self, site: SiteContext, visitor_id: str) -> VisitorProfile:
        self._members_only(site)

        async def compute() -> VisitorProfile:
            sessions = await self.queries.visitor_sessions(site.id, visitor_id)
            events = await self.queries.visitor_events(
                site.id, visitor_id, 5000, site.currency, site.client_revenue
            )
            if not sessions and not events:
                raise NotFound(f"No visitor {visitor_id!r} on this site")
            journeys: dict[str, list[VisitorEvent]] = {s["session_id"]: [] for s in sessions}
            others: list[VisitorEvent] = []
            for row in events:
                event = VisitorEvent(**{**row, "timestamp": _aware(row["timestamp"])})
                journeys.get(row["session_id"], others).append(event)
            visits = [
                VisitorSession(
                    session_id=s["session_id"],
                    started_at=_aware(s["started_at"]),
                    ended_at=_aware(s["ended_at"]),
                    duration=int(s["duration"]),
                    pageviews=int(s["pageviews"]),
                    events=int(s["events"]),
                    is_bounce=bool(s["is_bounce"]),
                    entry_page=s["entry_page"],
                    exit_page=s["exit_page"],
                    referrer=s["referrer"],
                    source=s["referrer_source"],
                    channel=s["channel"],
                    utm_source=s["utm_source"],
                    utm_medium=s["utm_medium"],
                    utm_campaign=s["utm_campaign"],
                    country=s["country"],
                    device=s["device"],
                    browser=s["browser"],
                    os=s["os"],
                    goals=int(s["goals"]),
                    # Money as the metrics count it (the tracker's claim is on each event).
                    revenue=sum(e.counted_revenue for e in journeys[s["session_id"]]),
                    journey=journeys[s["session_id"]],
                )
                for s in sessions
            ]
            stamps = [e.timestamp for e in events_of(journeys, others)]
            user_id, name = (await self.queries.identities(site.id, [visitor_id])).get(visitor_id, ("", ""))
            return VisitorProfile(
                visitor_id=visitor_id,
                user_id=user_id,
                name=name,
                first_seen=min(stamps) if stamps else None,
                last_seen=max(stamps) if stamps else None,
                first_source=visits[0].source if visits else "",
                visits=len(visits),
                pageviews=sum(1 for e in events_of(journeys, others) if e.event_type == "pageview"),
                goals=sum(1 for e in events_of(journeys, others) if e.event_type in ("goal", "purchase")),
                revenue=sum(e.counted_revenue for e in events_of(journeys, others)),
                currency=site.currency,
                sessions=visits,
                other_events=others,
            )

        result: VisitorProfile = await self._cached(site, "visitor", visitor_id, VisitorProfile, compute)
        return result

    async def funnel(
        self, site: SiteContext, funnel: FunnelRead, date_range: DateRange | Period, filters: list[Filter]
    ) -> FunnelResult:
        range_, spec = self._listing(site, date_range, filters)

        async def compute() -> FunnelResult:
            reached = await self.queries.funnel(
                spec, [FunnelStepSpec(s.kind, s.value) for s in funnel.steps], funnel.window_seconds
            )
            entered = reached[0] if reached else 0
            steps = []
            for i, (step, visitors) in enumerate(zip(funnel.steps, reached, strict=True)):
                previous = reached[i - 1] if i else visitors
                steps.append(
                    FunnelStepResult(
                        kind=step.kind,
                        value=step.value,
                        visitors=visitors,
                        conversion_rate=visitors / entered if entered else 0.0,
                        dropoff=previous - visitors,
                        dropoff_rate=(previous - visitors) / previous if previous else 0.0,
                    )
                )
            return FunnelResult(funnel=funnel, date_range=range_, steps=steps)

        result: FunnelResult = await self._cached(
            site, "funnel", [funnel, date_range, filters], FunnelResult, compute
        )
        return result


def events_of(journeys: dict[str, list[VisitorEvent]], others: list[VisitorEvent]) -> list[VisitorEvent]:
    return [e for journey in journeys.values() for e in journey] + others


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

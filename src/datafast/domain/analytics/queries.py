"""The one module that owns the analytics SQL over ClickHouse (``events`` and ``sessions``).

Every value from a request is bound server-side as a ``{pN:Type}`` parameter; only names from
the fixed tables below (columns, metric expressions) are ever written into the SQL text.

Two scopes, chosen from the dimensions and filters of a query:

- **session scope** (no event-level dimension): rows are *visits that started in the range*,
  read from ``sessions``. The table is a VersionedCollapsingMergeTree, so each visit is first
  collapsed (``GROUP BY session_id HAVING sum(sign) > 0``, values of its latest version) and
  then aggregated. Visitors are the distinct visitors of those visits.
- **event scope** (a page, hostname, goal or prop dimension): rows are *events whose
  timestamp is in the range*, read from ``events``. Visits are the distinct sessions among
  them; bounce rate and visit duration have no meaning per page and are refused.

Filters cross scopes by session: an event-level filter on a session-scope query keeps the
visits with a matching event in the range; a session-level filter on an event-scope query keeps
the events of visits that match (visit attributes — source, entry page, country… — are those of
the visit, never of the individual event). The aggregate and the time series read event
metrics from ``events`` and visit metrics (visits, bounce rate, visit duration, views per
visit) from ``sessions``; see :mod:`datafast.domain.analytics.service`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from datafast.lib.eventstore import EventStore

__all__ = (
    "DIMENSIONS",
    "EVENT_METRICS",
    "METRICS",
    "SESSION_METRICS",
    "AnalyticsQueries",
    "Dimension",
    "FilterSpec",
    "FunnelStepSpec",
    "GoalSpec",
    "QuerySpec",
    "dimension",
)

Scope = Literal["session", "event"]
Interval = Literal["hour", "day", "week", "month"]


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    scope: Scope
    column: str
    """Column in ``sessions`` (session scope) or ``events`` (event scope)."""
    prop_key: str | None = None


_SESSION_DIMENSIONS = {
    "source": "referrer_source",
    "channel": "channel",
    "referrer": "referrer",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "entry_page": "entry_page",
    "exit_page": "exit_page",
    "country": "country",
    "region": "region",
    "city": "city",
    "device": "device",
    "browser": "browser",
    "os": "os",
}
_EVENT_DIMENSIONS = {"page": "pathname", "hostname": "hostname", "goal": "goal_name"}

DIMENSIONS: dict[str, Dimension] = {
    **{name: Dimension(name, "session", column) for name, column in _SESSION_DIMENSIONS.items()},
    **{name: Dimension(name, "event", column) for name, column in _EVENT_DIMENSIONS.items()},
}
PROP_PREFIX = "prop:"


def dimension(name: str) -> Dimension | None:
    """The dimension called ``name`` (``prop:<key>`` for a custom property), or None."""
    if name.startswith(PROP_PREFIX):
        key = name[len(PROP_PREFIX) :]
        if not 0 < len(key) <= 100:
            return None
        return Dimension(name, "event", "props", prop_key=key)
    return DIMENSIONS.get(name)


# Metric name → SQL over the collapsed visits (session scope) / the events (event scope).
# Ratios are computed in SQL so that ordering and pagination can use them.
_SESSION_SQL = {
    "visitors": "uniqExact(s_visitor)",
    "visits": "count()",
    "pageviews": "sum(s_pageviews)",
    "events": "sum(s_events)",
    "views_per_visit": "if(count() = 0, 0, sum(s_pageviews) / count())",
    "bounce_rate": "if(count() = 0, 0, sum(s_bounce) / count())",
    "visit_duration": "if(count() = 0, 0, sum(s_duration) / count())",
    "conversions": "uniqExactIf(s_visitor, s_goals > 0)",
    "conversion_rate": "if(count() = 0, 0, uniqExactIf(s_visitor, s_goals > 0) / uniqExact(s_visitor))",
    "revenue": "sum(s_revenue)",
    "revenue_per_visitor": "if(count() = 0, 0, sum(s_revenue) / uniqExact(s_visitor))",
}
_CONVERSION = "event_type IN ('goal', 'purchase')"
_EVENT_SQL = {
    "visitors": "uniqExact(visitor_id)",
    "visits": "uniqExact(session_id)",
    "pageviews": "countIf(event_type = 'pageview')",
    "events": "count()",
    "views_per_visit": (
        "if(uniqExact(session_id) = 0, 0, countIf(event_type = 'pageview') / uniqExact(session_id))"
    ),
    "conversions": f"uniqExactIf(visitor_id, {_CONVERSION})",
    "conversion_rate": (
        f"if(uniqExact(visitor_id) = 0, 0, uniqExactIf(visitor_id, {_CONVERSION}) / uniqExact(visitor_id))"
    ),
    "revenue": "sum(revenue)",
    "revenue_per_visitor": "if(uniqExact(visitor_id) = 0, 0, sum(revenue) / uniqExact(visitor_id))",
    "purchases": "countIf(event_type = 'purchase')",
    "average_order_value": (
        "if(countIf(event_type = 'purchase') = 0, 0, sum(revenue) / countIf(event_type = 'purchase'))"
    ),
}
METRICS: tuple[str, ...] = (
    "visitors",
    "visits",
    "pageviews",
    "views_per_visit",
    "bounce_rate",
    "visit_duration",
    "events",
    "conversions",
    "conversion_rate",
    "revenue",
    "revenue_per_visitor",
    "purchases",
    "average_order_value",
)
SESSION_METRICS = frozenset(_SESSION_SQL)
EVENT_METRICS = frozenset(_EVENT_SQL)
VISIT_METRICS = frozenset({"visits", "bounce_rate", "visit_duration", "views_per_visit"})
"""In the aggregate and the time series, these come from ``sessions``; the others from ``events``."""

# The same metrics over the hourly rollups (migrations/clickhouse/0003_rollups.py).
_SESSION_ROLLUP_SQL = {
    "visitors": "uniqExactMerge(visitors)",
    "visits": "sum(visits)",
    "pageviews": "sum(pageviews)",
    "events": "sum(events)",
    "views_per_visit": "if(sum(visits) = 0, 0, sum(pageviews) / sum(visits))",
    "bounce_rate": "if(sum(visits) = 0, 0, sum(bounces) / sum(visits))",
    "visit_duration": "if(sum(visits) = 0, 0, sum(duration) / sum(visits))",
    "conversions": "uniqExactMerge(converted)",
    "conversion_rate": (
        "if(uniqExactMerge(visitors) = 0, 0, uniqExactMerge(converted) / uniqExactMerge(visitors))"
    ),
    "revenue": "sum(revenue)",
    "revenue_per_visitor": "if(uniqExactMerge(visitors) = 0, 0, sum(revenue) / uniqExactMerge(visitors))",
}
_EVENT_ROLLUP_SQL = {
    "visitors": "uniqExactMerge(visitors)",
    "visits": "uniqExactMerge(sessions)",
    "pageviews": "sum(pageviews)",
    "events": "sum(events)",
    "views_per_visit": "if(uniqExactMerge(sessions) = 0, 0, sum(pageviews) / uniqExactMerge(sessions))",
    "conversions": "uniqExactMerge(converted)",
    "conversion_rate": (
        "if(uniqExactMerge(visitors) = 0, 0, uniqExactMerge(converted) / uniqExactMerge(visitors))"
    ),
    "revenue": "sum(revenue)",
    "revenue_per_visitor": "if(uniqExactMerge(visitors) = 0, 0, sum(revenue) / uniqExactMerge(visitors))",
    "purchases": "sum(purchases)",
    "average_order_value": "if(sum(purchases) = 0, 0, sum(revenue) / sum(purchases))",
}
_ROLLED_UP = {
    "session": frozenset(_SESSION_DIMENSIONS) - {"exit_page"} | {""},
    "event": frozenset(_EVENT_DIMENSIONS) | {""},
}
_SUMMED_ONLY = frozenset({"exit_page"})
"""Rolled up for the summed metrics only: a visit's exit page changes, so its visitor states do not hold."""
_SUMMED_METRICS = frozenset(
    {"visits", "pageviews", "events", "views_per_visit", "bounce_rate", "visit_duration", "revenue"}
)


def whole_hour_offsets(timezone: str, start: datetime, end: datetime) -> bool:
    """True when every local day boundary of ``[start, end)`` falls on a UTC hour (hourly rollups fit)."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    moment = start
    while moment <= end:
        offset = moment.astimezone(zone).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
        moment += timedelta(hours=12)
    return start.minute == start.second == end.minute == end.second == 0


# Bucket of a timestamp in the site's timezone, as a label; the tz is a bound parameter.
_BUCKETS: dict[Interval, str] = {
    "hour": "formatDateTime(toStartOfHour(toTimeZone({ts}, {tz})), '%Y-%m-%dT%H:00%z')",
    "day": "toString(toDate(toTimeZone({ts}, {tz})))",
    "week": "toString(toMonday(toTimeZone({ts}, {tz})))",
    "month": "toString(toStartOfMonth(toTimeZone({ts}, {tz})))",
}


@dataclass(frozen=True, slots=True)
class FilterSpec:
    dimension: Dimension
    operator: Literal["is", "is_not", "contains", "not_contains"]
    values: tuple[str, ...]
    goals: tuple[tuple[str, GoalSpec], ...] = ()
    """For the ``goal`` dimension: the site's defined goals (name, what it matches), so that
    ``goal is <name>`` of a defined goal matches its pageviews or events, not a tracker goal name."""


@dataclass(frozen=True, slots=True)
class QuerySpec:
    """A validated query: UTC bounds ``[start, end)`` already resolved from the site's dates."""

    website_id: str
    timezone: str
    start: datetime
    end: datetime
    metrics: tuple[str, ...]
    dimensions: tuple[Dimension, ...] = ()
    filters: tuple[FilterSpec, ...] = ()
    interval: Interval | None = None
    order_by: tuple[tuple[str, Literal["asc", "desc"]], ...] = ()
    limit: int = 100
    offset: int = 0

    @property
    def scope(self) -> Scope:
        return "event" if any(d.scope == "event" for d in self.dimensions) else "session"


@dataclass(frozen=True, slots=True)
class FunnelStepSpec:
    kind: Literal["page", "goal"]
    value: str


@dataclass(frozen=True, slots=True)
class GoalSpec:
    """A goal defined in the site's settings: a pageview of a path (``*`` matches anything) or an
    event (a tracker goal or a custom event) of that name."""

    kind: Literal["pageview", "event"]
    value: str


def _like_pattern(path_glob: str) -> str:
    escaped = path_glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


@dataclass(slots=True)
class _Params:
    values: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any, type_: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return "{" + name + ":" + type_ + "}"


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _column_sql(dim: Dimension, params: _Params) -> str:
    if dim.prop_key is not None:
        return f"props[{params.bind(dim.prop_key, 'String')}]"
    return dim.column


def _goal_condition(goal: GoalSpec, params: _Params) -> str:
    """The events that complete a defined goal."""
    if goal.kind == "pageview":
        pattern = params.bind(_like_pattern(goal.value), "String")
        return f"event_type = 'pageview' AND pathname LIKE {pattern}"
    # A tracker goal by its goal name (as the goal breakdown and funnels match it), or a custom
    # event by its event name.
    name = params.bind(goal.value, "String")
    return f"({_CONVERSION} AND goal_name = {name} OR event_type = 'custom' AND event_name = {name})"


def _condition(f: FilterSpec, column: str, params: _Params) -> str:
    defined = dict(f.goals)
    if f.dimension.name == "goal" and f.operator in ("is", "is_not") and defined.keys() & set(f.values):
        parts = [_goal_condition(defined[v], params) for v in f.values if v in defined]
        rest = [v for v in f.values if v not in defined]
        if rest:
            parts.append(f"has({params.bind(rest, 'Array(String)')}, {column})")
        match = " OR ".join(f"({part})" for part in parts)
        return f"({match})" if f.operator == "is" else f"NOT ({match})"
    values = params.bind(list(f.values), "Array(String)")
    if f.operator == "is":
        return f"has({values}, {column})"
    if f.operator == "is_not":
        return f"NOT has({values}, {column})"
    # contains: case-insensitive substring of any value
    match = f"multiSearchAnyCaseInsensitiveUTF8({column}, {values})"
    return match if f.operator == "contains" else f"NOT {match}"


def _scope_conditions(filters: Sequence[FilterSpec], scope: Scope, params: _Params) -> list[str]:
    return [
        _condition(f, _column_sql(f.dimension, params), params) for f in filters if f.dimension.scope == scope
    ]


class AnalyticsQueries:
    """Builds and runs the analytics SQL; returns plain rows (lists of dicts)."""

    def __init__(self, store: EventStore, *, rollups: bool = True) -> None:
        self.store = store
        self.rollups = rollups

    def _rollup(self, spec: QuerySpec, scope: Scope, metrics: Sequence[str]) -> str | None:
        """The rollup table answering this query exactly, or None (filters, odd timezones…)."""
        if not self.rollups or spec.filters or len(spec.dimensions) > 1:
            return None
        name = spec.dimensions[0].name if spec.dimensions else ""
        if name in _SUMMED_ONLY and scope == "session":
            if not set(metrics) <= _SUMMED_METRICS:
                return None
        elif name not in _ROLLED_UP[scope]:
            return None
        if not whole_hour_offsets(spec.timezone, spec.start, spec.end):
            return None
        return "sessions_hourly" if scope == "session" else "events_hourly"

    def _rollup_where(self, spec: QuerySpec, params: _Params) -> str:
        name = spec.dimensions[0].name if spec.dimensions else ""
        site = params.bind(spec.website_id, "UUID")
        start = params.bind(_utc(spec.start)[:19], "DateTime('UTC')")
        end = params.bind(_utc(spec.end)[:19], "DateTime('UTC')")
        dim = params.bind(name, "String")
        return f"website_id = {site} AND dimension = {dim} AND hour >= {start} AND hour < {end}"

    async def _rows(self, sql: str, params: _Params) -> list[dict[str, Any]]:
        result = await self.store.query(sql, parameters=params.values)
        names = [n[2:] if n.startswith("m_") else n for n in result.column_names]
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    # --- building blocks ----------------------------------------------------------------

    def _event_where(self, spec: QuerySpec, params: _Params) -> str:
        """Events of the site in the range, matching event filters, in visits matching the rest."""
        site = params.bind(spec.website_id, "UUID")
        start = params.bind(_utc(spec.start), "DateTime64(3, 'UTC')")
        end = params.bind(_utc(spec.end), "DateTime64(3, 'UTC')")
        conditions = [f"website_id = {site}", f"timestamp >= {start}", f"timestamp < {end}"]
        conditions += _scope_conditions(spec.filters, "event", params)
        session_conditions = _scope_conditions(spec.filters, "session", params)
        if session_conditions:
            # Visits with events in the range (started before its end, ended after its start).
            conditions.append(
                "session_id IN (SELECT session_id FROM sessions"
                f" WHERE website_id = {site} AND started_at < {end} AND ended_at >= {start}"
                f" AND {' AND '.join(session_conditions)}"
                " GROUP BY session_id HAVING sum(sign) > 0)"
            )
        return " AND ".join(conditions)

    def _visits_subquery(self, spec: QuerySpec, params: _Params, columns: Sequence[str]) -> str:
        """Visits started in the range, one collapsed row each, ``columns`` from their latest version."""
        site = params.bind(spec.website_id, "UUID")
        start = params.bind(_utc(spec.start), "DateTime64(3, 'UTC')")
        end = params.bind(_utc(spec.end), "DateTime64(3, 'UTC')")
        conditions = [f"website_id = {site}", f"started_at >= {start}", f"started_at < {end}"]
        conditions += _scope_conditions(spec.filters, "session", params)
        event_conditions = _scope_conditions(spec.filters, "event", params)
        if event_conditions:
            conditions.append(
                "session_id IN (SELECT session_id FROM events"
                f" WHERE website_id = {site} AND timestamp >= {start} AND timestamp < {end}"
                f" AND {' AND '.join(event_conditions)})"
            )
        latest = "".join(f", argMax({c}, version) AS s_{c}" for c in columns)
        # s_-prefixed names: an alias equal to a column would be substituted inside aggregates.
        return (
            "SELECT session_id, argMax(visitor_id, version) AS s_visitor,"
            f" argMax(started_at, version) AS s_started{latest},"
            " sum(sign * pageviews) AS s_pageviews, sum(sign * events) AS s_events,"
            " sum(sign * is_bounce) AS s_bounce, sum(sign * duration) AS s_duration,"
            " sum(sign * goals) AS s_goals, sum(sign * revenue) AS s_revenue"
            f" FROM sessions WHERE {' AND '.join(conditions)}"
            " GROUP BY session_id HAVING sum(sign) > 0"
        )

    @staticmethod
    def _order(spec: QuerySpec, dims: Sequence[str]) -> str:
        # order_by names are SQL names already: ``m_<metric>`` or ``d<i>`` (see the service).
        order = [f"{name} {direction.upper()}" for name, direction in spec.order_by]
        if not order and spec.metrics:
            order.append(f"m_{spec.metrics[0]} DESC")
        # Dimensions last so that pages of equal values are stable.
        order += [f"{d} ASC" for d in dims if all(d != name for name, _ in spec.order_by)]
        return ", ".join(order) if order else "1"

    # --- queries ------------------------------------------------------------------------

    async def breakdown(self, spec: QuerySpec) -> list[dict[str, Any]]:
        """Metrics grouped by ``spec.dimensions`` (output keys ``d0, d1…`` then metric names)."""
        params = _Params()
        dims = [f"d{i}" for i in range(len(spec.dimensions))]
        rollup = self._rollup(spec, spec.scope, spec.metrics)
        extra: list[str] = []
        if rollup is not None:
            metric_sql = _SESSION_ROLLUP_SQL if spec.scope == "session" else _EVENT_ROLLUP_SQL
            select = ["value AS d0", *(f"{metric_sql[m]} AS m_{m}" for m in spec.metrics)]
            source = rollup
            where = " WHERE " + self._rollup_where(spec, params)
            # A value whose visits were all cancelled (changed since) is not a row.
            extra = ["sum(visits) > 0"] if spec.scope == "session" else []
            extra += ["d0 != ''"] if spec.dimensions[0].name == "goal" else []
        elif spec.scope == "session":
            columns = [d.column for d in spec.dimensions]
            inner = self._visits_subquery(spec, params, sorted(set(columns)))
            select = [f"s_{d.column} AS d{i}" for i, d in enumerate(spec.dimensions)]
            select += [f"{_SESSION_SQL[m]} AS m_{m}" for m in spec.metrics]
            source = f"({inner})"
            where = ""
        else:
            select = [f"{_column_sql(d, params)} AS d{i}" for i, d in enumerate(spec.dimensions)]
            select += [f"{_EVENT_SQL[m]} AS m_{m}" for m in spec.metrics]
            source = "events"
            where = " WHERE " + self._event_where(spec, params)
            # A goal breakdown lists goals, not the events without one.
            extra = [f"d{i} != ''" for i, d in enumerate(spec.dimensions) if d.name == "goal"]
        having = f" HAVING {' AND '.join(extra)}" if extra else ""
        limit = params.bind(spec.limit, "UInt32")
        offset = params.bind(spec.offset, "UInt32")
        sql = (
            f"SELECT {', '.join(select)} FROM {source}{where}"
            f" GROUP BY {', '.join(dims)}{having} ORDER BY {self._order(spec, dims)}"
            f" LIMIT {limit} OFFSET {offset}"
        )
        return await self._rows(sql, params)

    async def aggregate_events(self, spec: QuerySpec, metrics: Sequence[str]) -> dict[str, Any]:
        params = _Params()
        rollup = self._rollup(spec, "event", metrics)
        if rollup is not None:
            select = ", ".join(f"{_EVENT_ROLLUP_SQL[m]} AS m_{m}" for m in metrics)
            sql = f"SELECT {select} FROM {rollup} WHERE {self._rollup_where(spec, params)}"
        else:
            select = ", ".join(f"{_EVENT_SQL[m]} AS m_{m}" for m in metrics)
            sql = f"SELECT {select} FROM events WHERE {self._event_where(spec, params)}"
        return (await self._rows(sql, params))[0]

    async def aggregate_visits(self, spec: QuerySpec, metrics: Sequence[str]) -> dict[str, Any]:
        params = _Params()
        rollup = self._rollup(spec, "session", metrics)
        if rollup is not None:
            select = ", ".join(f"{_SESSION_ROLLUP_SQL[m]} AS m_{m}" for m in metrics)
            sql = f"SELECT {select} FROM {rollup} WHERE {self._rollup_where(spec, params)}"
        else:
            select = ", ".join(f"{_SESSION_SQL[m]} AS m_{m}" for m in metrics)
            sql = f"SELECT {select} FROM ({self._visits_subquery(spec, params, [])})"
        return (await self._rows(sql, params))[0]

    async def timeseries_events(self, spec: QuerySpec, metrics: Sequence[str]) -> list[dict[str, Any]]:
        assert spec.interval is not None
        params = _Params()
        rollup = self._rollup(spec, "event", metrics)
        if rollup is not None:
            where, source, ts, metric_sql = (
                self._rollup_where(spec, params),
                rollup,
                "hour",
                _EVENT_ROLLUP_SQL,
            )
        else:
            where, source, ts, metric_sql = self._event_where(spec, params), "events", "timestamp", _EVENT_SQL
        bucket = _BUCKETS[spec.interval].format(ts=ts, tz=params.bind(spec.timezone, "String"))
        select = ", ".join(f"{metric_sql[m]} AS m_{m}" for m in metrics)
        sql = (
            f"SELECT {bucket} AS bucket, {select} FROM {source} WHERE {where} GROUP BY bucket ORDER BY bucket"
        )
        return await self._rows(sql, params)

    async def timeseries_visits(self, spec: QuerySpec, metrics: Sequence[str]) -> list[dict[str, Any]]:
        assert spec.interval is not None
        params = _Params()
        rollup = self._rollup(spec, "session", metrics)
        if rollup is not None:
            source, ts, metric_sql = (
                f"{rollup} WHERE {self._rollup_where(spec, params)}",
                "hour",
                _SESSION_ROLLUP_SQL,
            )
        else:
            source, ts = f"({self._visits_subquery(spec, params, [])})", "s_started"
            metric_sql = _SESSION_SQL
        bucket = _BUCKETS[spec.interval].format(ts=ts, tz=params.bind(spec.timezone, "String"))
        select = ", ".join(f"{metric_sql[m]} AS m_{m}" for m in metrics)
        sql = f"SELECT {bucket} AS bucket, {select} FROM {source} GROUP BY bucket ORDER BY bucket"
        return await self._rows(sql, params)

    async def current_visitors(self, website_id: str, since: datetime) -> int:
        params = _Params()
        site = params.bind(website_id, "UUID")
        start = params.bind(_utc(since), "DateTime64(3, 'UTC')")
        rows = await self._rows(
            "SELECT uniqExact(visitor_id) AS visitors FROM events"
            f" WHERE website_id = {site} AND timestamp >= {start}",
            params,
        )
        return int(rows[0]["visitors"])

    async def funnel(
        self, spec: QuerySpec, steps: Sequence[FunnelStepSpec], window_seconds: int
    ) -> list[int]:
        """Visitors reaching each step in order within the window (``windowFunnel``)."""
        params = _Params()
        where = self._event_where(spec, params)
        conditions = []
        for step in steps:
            value = params.bind(step.value, "String")
            if step.kind == "page":
                conditions.append(f"event_type = 'pageview' AND pathname = {value}")
            else:
                conditions.append(f"{_CONVERSION} AND goal_name = {value}")
        window = params.bind(window_seconds, "UInt64")
        sql = (
            "SELECT level, count() AS visitors FROM ("
            f"SELECT visitor_id, windowFunnel({window})(toDateTime(timestamp), {', '.join(conditions)})"
            " AS level"
            f" FROM events WHERE {where} GROUP BY visitor_id) GROUP BY level"
        )
        reached = {int(r["level"]): int(r["visitors"]) for r in await self._rows(sql, params)}
        return [sum(n for level, n in reached.items() if level >= i) for i in range(1, len(steps) + 1)]

    async def defined_goals(self, spec: QuerySpec, goals: Sequence[GoalSpec]) -> list[dict[str, int]]:
        """Per goal of the settings: converting visitors, completions and revenue of its events."""
        if not goals:
            return []
        params = _Params()
        where = self._event_where(spec, params)
        columns = []
        for i, goal in enumerate(goals):
            condition = _goal_condition(goal, params)
            columns += [
                f"uniqExactIf(visitor_id, {condition}) AS c{i}",
                f"countIf({condition}) AS e{i}",
                f"sumIf(revenue, {condition}) AS r{i}",
            ]
        (row,) = await self._rows(f"SELECT {', '.join(columns)} FROM events WHERE {where}", params)
        return [
            {"conversions": int(row[f"c{i}"]), "events": int(row[f"e{i}"]), "revenue": int(row[f"r{i}"])}
            for i in range(len(goals))
        ]

    async def visitors(self, spec: QuerySpec) -> list[dict[str, Any]]:
        """Visitors with events in the range: first source seen in the range and their totals."""
        params = _Params()
        where = self._event_where(spec, params)
        limit = params.bind(spec.limit, "UInt32")
        offset = params.bind(spec.offset, "UInt32")
        sql = (
            "SELECT visitor_id, min(timestamp) AS first_seen, max(timestamp) AS last_seen,"
            " argMin(referrer_source, timestamp) AS source, argMin(channel, timestamp) AS channel,"
            " argMin(country, timestamp) AS country, argMin(device, timestamp) AS device,"
            " uniqExact(session_id) AS visits, countIf(event_type = 'pageview') AS pageviews,"
            f" count() AS events, countIf({_CONVERSION}) AS conversions, sum(revenue) AS revenue"
            f" FROM events WHERE {where} GROUP BY visitor_id"
            f" ORDER BY last_seen DESC, visitor_id ASC LIMIT {limit} OFFSET {offset}"
        )
        return await self._rows(sql, params)

    async def visitor_sessions(self, website_id: str, visitor_id: str) -> list[dict[str, Any]]:
        params = _Params()
        site = params.bind(website_id, "UUID")
        visitor = params.bind(visitor_id, "String")
        columns = ", ".join(
            f"argMax({c}, version) AS {c}"
            for c in (
                "started_at",
                "ended_at",
                "duration",
                "pageviews",
                "events",
                "is_bounce",
                "entry_page",
                "exit_page",
                "referrer",
                "referrer_source",
                "channel",
                "utm_source",
                "utm_medium",
                "utm_campaign",
                "country",
                "device",
                "browser",
                "os",
                "goals",
                "revenue",
            )
        )
        sql = (
            f"SELECT session_id, {columns} FROM sessions WHERE website_id = {site} AND visitor_id = {visitor}"
            " GROUP BY session_id HAVING sum(sign) > 0 ORDER BY started_at, session_id"
        )
        return await self._rows(sql, params)

    async def visitor_events(self, website_id: str, visitor_id: str, limit: int) -> list[dict[str, Any]]:
        params = _Params()
        site = params.bind(website_id, "UUID")
        visitor = params.bind(visitor_id, "String")
        sql = (
            "SELECT timestamp, session_id, event_type, event_name, pathname, goal_name, revenue, currency"
            f" FROM events WHERE website_id = {site} AND visitor_id = {visitor}"
            f" ORDER BY timestamp, event_id LIMIT {params.bind(limit, 'UInt32')}"
        )
        return await self._rows(sql, params)

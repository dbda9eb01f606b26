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

Money metrics (revenue, purchases, refunds…) read the conversions and their credited visits,
whose SQL (the double-count rule, the attribution models) lives in
:mod:`datafast.domain.analytics.conversions`, shared with the attribution report; here they are
joined to the traffic side of the same groups (see "money" below).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from datafast.domain.analytics import conversions
from datafast.domain.analytics.catalog import (
    EVENT_COLUMNS,
    EVENT_METRICS,
    MONEY_METRICS,
    SESSION_COLUMNS,
    SESSION_METRICS,
    Dimension,
    GoalDefinition,
    Scope,
)
from datafast.domain.analytics.conversions import (
    DEFAULT_CLIENT_REVENUE,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_MODEL,
    ClientRevenue,
    MoneyWindow,
)
from datafast.domain.analytics.credits import (
    CARRIED,
    KEPT_STALE,
    LOOKBACK,
    kept_credited,
    kept_credits,
)
from datafast.domain.analytics.dates import local_days, whole_hour_offsets
from datafast.domain.analytics.local_days import LocalDays
from datafast.lib.eventstore import EventStore

__all__ = ("AnalyticsQueries", "FilterSpec", "FunnelStepSpec", "Interval", "QuerySpec")

Interval = Literal["hour", "day", "week", "month"]


def _uniq(expression: str, condition: str | None = None) -> str:
    """Distinct count: the HyperLogLog of the rollups (0005_rollups_daily) on the same hashes.

    Exact up to about a thousand distinct values, within about 1% above; both paths agree.
    """
    if condition is None:
        return f"uniqCombined64(15)(cityHash64({expression}))"
    return f"uniqCombined64If(15)(cityHash64({expression}), {condition})"


def _merge(state: str) -> str:
    return f"uniqCombined64Merge(15)({state})"


# Metric name → SQL over the collapsed visits (session scope) / the events (event scope).
# Ratios are computed in SQL so that ordering and pagination can use them.
_VISITORS = _uniq("s_visitor")
_SESSION_SQL = {
    "visitors": _VISITORS,
    "visits": "count()",
    "pageviews": "sum(s_pageviews)",
    "events": "sum(s_events)",
    "views_per_visit": "if(count() = 0, 0, sum(s_pageviews) / count())",
    "bounce_rate": "if(count() = 0, 0, sum(s_bounce) / count())",
    "visit_duration": "if(count() = 0, 0, sum(s_duration) / count())",
}
_CONVERSION = "event_type IN ('goal', 'purchase')"
_E_VISITORS, _E_VISITS = _uniq("visitor_id"), _uniq("session_id")
_EVENT_SQL = {
    "visitors": _E_VISITORS,
    "visits": _E_VISITS,
    "pageviews": "countIf(event_type = 'pageview')",
    "events": "count()",
    "views_per_visit": f"if({_E_VISITS} = 0, 0, countIf(event_type = 'pageview') / {_E_VISITS})",
}
# Money metrics over one row of the money side (``r_<name>``, see analytics.conversions.MONEY) joined
# to the traffic side of the same group: its visitors and its visitors with a goal or purchase.
# Converted visitors (visitors with a goal or purchase event, or a payment): the traffic side's
# HyperLogLog state of converted visitors merged with one of the paying visitors (same hashes).
_PAYERS = "arrayReduce('uniqCombined64State(15)', arrayMap(v -> cityHash64(v), r_payers))"
_CONVERTED = f"arrayReduce('uniqCombined64Merge(15)', [x_converted, {_PAYERS}])"
_MONEY_SQL = {
    "revenue": "r_revenue",
    "new_revenue": "r_new_revenue",
    "renewal_revenue": "r_renewal_revenue",
    "refunds": "r_refunds",
    "purchases": "r_payments",
    "average_order_value": "if(r_payments = 0, 0, r_gross / r_payments)",
    "revenue_per_visitor": "if(x_visitors = 0, 0, r_revenue / x_visitors)",
    "conversions": _CONVERTED,
    "conversion_rate": f"if(x_visitors = 0, 0, {_CONVERTED} / x_visitors)",
}


def _money_needed(metrics: Sequence[str] | None) -> frozenset[str] | None:
    """The ``r_<name>`` columns of the money side that ``metrics`` read (None: all of them)."""
    if metrics is None:
        return None
    words = set(_WORD.findall(" ".join(_MONEY_SQL[m] for m in metrics if m in _MONEY_SQL)))
    return frozenset(w[2:] for w in words if w.startswith("r_"))


_RATIOS = frozenset(
    {"views_per_visit", "bounce_rate", "visit_duration", "revenue_per_visitor", "conversion_rate"}
    | {"average_order_value"}
)
"""Metrics computed as Float64 (a missing side of a FULL JOIN reads 0.0, the others 0)."""


def _zero(metric: str) -> int | float:
    return 0.0 if metric in _RATIOS else 0


def _money_metric(metric: str, money: dict[str, Any], visitors: int, converted: int) -> int | float:
    """:data:`_MONEY_SQL`'s formula in Python, over a money row (``r_<name>``; absent: none), the
    visitors and the converted visitors (the rollup's merged with the payers), for money and
    traffic read by two queries at once. Float64 division as ClickHouse does it: the sums are
    integers below 2**53, so each is exact as a float and the quotient is rounded once."""
    if metric == "conversions":
        return converted
    if metric == "conversion_rate":
        return 0.0 if visitors == 0 else converted / visitors
    if metric == "revenue_per_visitor":
        return 0.0 if visitors == 0 else money.get("r_revenue", 0) / visitors
    if metric == "average_order_value":
        payments = money.get("r_payments", 0)
        return 0.0 if payments == 0 else money.get("r_gross", 0) / payments
    value: int = money.get(_MONEY_SQL[metric], 0)
    return value


def _ordered(rows: list[dict[str, Any]], spec: QuerySpec) -> list[dict[str, Any]]:
    """Rows (``d0`` and metric names) in :meth:`AnalyticsQueries._order`'s order, as ClickHouse sorts
    them: numbers by value, strings by bytes (UTF-8: by code point), NULL last either way."""
    order = list(spec.order_by)
    if not order and spec.metrics:
        order.append((f"m_{spec.metrics[0]}", "desc"))
    if all(name != "d0" for name, _ in order):
        order.append(("d0", "asc"))
    for name, direction in reversed(order):  # stable sorts, the last key first
        descending = direction == "desc"
        if name == "d0":
            # (is a value, value) descending and (is NULL, value) ascending both put NULL last.
            rows.sort(
                key=lambda r: (r["d0"] is not None if descending else r["d0"] is None, r["d0"] or ""),
                reverse=descending,
            )
        else:
            metric = name[2:]
            rows.sort(key=lambda r: r[metric], reverse=descending)
    return rows


def _converted_state(expression: str, condition: str) -> str:
    return f"uniqCombined64StateIf(15)(cityHash64({expression}), {condition}) AS x_converted"


_TRAFFIC = {
    "session": f"{_VISITORS} AS x_visitors, {_converted_state('s_visitor', 's_goals > 0')}",
    "event": f"{_E_VISITORS} AS x_visitors, {_converted_state('visitor_id', _CONVERSION)}",
    # In a goal breakdown every event of a row completes that goal (a pageview goal's pageviews too).
    "goal": f"{_E_VISITORS} AS x_visitors, {_converted_state('visitor_id', '1')}",
    # Over the rollups (their states are the same HyperLogLog of the same hashes).
    "rollup": (
        "uniqCombined64Merge(15)(visitors) AS x_visitors,"
        " uniqCombined64MergeState(15)(converted) AS x_converted"
    ),
}
assert set(_MONEY_SQL) == MONEY_METRICS
_TRAFFIC_MONEY = frozenset({"revenue_per_visitor", "conversions", "conversion_rate"})
"""Money metrics that need the traffic side (``x_visitors``, ``x_converted``)."""
assert set(_SESSION_SQL) | MONEY_METRICS == SESSION_METRICS
assert set(_EVENT_SQL) | MONEY_METRICS == EVENT_METRICS

# The same metrics over the rollups (migrations/clickhouse/0005_rollups_daily.py).
_R_VISITORS, _R_CONVERTED = _merge("visitors"), _merge("converted")
_SESSION_ROLLUP_SQL = {
    "visitors": _R_VISITORS,
    "visits": "sum(visits)",
    "pageviews": "sum(pageviews)",
    "events": "sum(events)",
    "views_per_visit": "if(sum(visits) = 0, 0, sum(pageviews) / sum(visits))",
    "bounce_rate": "if(sum(visits) = 0, 0, sum(bounces) / sum(visits))",
    "visit_duration": "if(sum(visits) = 0, 0, sum(duration) / sum(visits))",
}
_R_SESSIONS = _merge("sessions")
_EVENT_ROLLUP_SQL = {
    "visitors": _R_VISITORS,
    "visits": _R_SESSIONS,
    "pageviews": "sum(pageviews)",
    "events": "sum(events)",
    "views_per_visit": f"if({_R_SESSIONS} = 0, 0, sum(pageviews) / {_R_SESSIONS})",
}
_ROLLUP_COLUMNS = (
    *("visits", "pageviews", "events", "bounces", "duration", "revenue", "purchases"),
    *("visitors", "converted", "sessions"),
)
_WORD = re.compile(r"\w+")
_STATE_COLUMNS = frozenset({"visitors", "converted", "sessions"})
_SUMMED_COLUMNS = frozenset(_ROLLUP_COLUMNS) - _STATE_COLUMNS
_EMPTY = "arrayReduce('uniqCombined64State(15)', CAST([], 'Array(UInt64)'))"
"""An empty visitor state: what rows that only bring sums merge."""
_HOUR = "DateTime('UTC')"
HOURLY_SUMS_DAYS = 31
"""Up to this many whole UTC days, summed columns are read from the hourly rollup alone: up to 744
rows a value cost less to add up than reading the daily rollup besides (3 to 4 ms of CPU a query
on the 10M benchmark, for 7 to 88 days and up to ten values). Visitor states are not: each is a
sketch to merge, so they read whole days from the daily (or local-day) rollups."""


def _run_span(run: tuple[int, date, date]) -> tuple[datetime, datetime]:
    """The UTC hours of a run of local days at one offset (see ``dates.local_days``)."""
    offset, first, last = run
    shift = timedelta(seconds=offset)
    return (
        datetime.combine(first, time(0), tzinfo=UTC) - shift,
        datetime.combine(last, time(0), tzinfo=UTC) - shift,
    )


_ROLLED_UP = {
    "session": frozenset(SESSION_COLUMNS) - {"exit_page"} | {""},
    "event": frozenset(EVENT_COLUMNS) | {""},
}
_SUMMED_ONLY = frozenset({"exit_page"})
"""Rolled up for the summed metrics only: a visit's exit page changes, so its visitor states do not hold."""
_SUMMED_METRICS = frozenset(
    {"visits", "pageviews", "events", "views_per_visit", "bounce_rate", "visit_duration"}
)


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
    goals: tuple[GoalDefinition, ...] = ()
    currency: str = ""
    """The site's currency: tracker revenue in another one is not money received."""
    attribution: str = DEFAULT_MODEL
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    client_revenue: ClientRevenue = DEFAULT_CLIENT_REVENUE
    """Whether (and how much of) tracker revenue counts: the site's policy (revenue.trust)."""

    @property
    def scope(self) -> Scope:
        return "event" if any(d.scope == "event" for d in self.dimensions) else "session"


@dataclass(frozen=True, slots=True)
class FunnelStepSpec:
    kind: Literal["page", "goal"]
    value: str


@dataclass(slots=True)
class _Params:
    values: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any, type_: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return "{" + name + ":" + type_ + "}"


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _goals_sql(goals: Sequence[GoalDefinition], params: _Params) -> str:
    """The goals an event completes, as an array: its tracker goal, then every definition it matches."""
    if not goals:
        return "if(goal_name = '', [], [goal_name])"
    # A tracker goal named by an event definition is listed under the definition's name only.
    claimed = params.bind([g.match for g in goals if g.kind == "event"], "Array(String)")
    parts = [f"if(goal_name = '' OR has({claimed}, goal_name), [], [goal_name])"]
    for goal in goals:
        if goal.kind == "pageview":
            matches = f"event_type = 'pageview' AND match(pathname, {params.bind(goal.path_regex, 'String')})"
        else:
            name = params.bind(goal.match, "String")
            matches = f"event_type != 'pageview' AND (event_name = {name} OR goal_name = {name})"
        parts.append(f"if({matches}, [{params.bind(goal.name, 'String')}], [])")
    return f"arrayDistinct(arrayConcat({', '.join(parts)}))"


def _column_sql(dim: Dimension, params: _Params, goals: Sequence[GoalDefinition] = ()) -> str:
    if dim.prop_key is not None:
        key = params.bind(dim.prop_key, "String")
        if dim.public:  # identify's traits describe one person: never shown or matched publicly
            return f"if(event_type = 'identify', '', props[{key}])"
        return f"props[{key}]"
    if dim.name == "goal":
        return f"arrayJoin({_goals_sql(goals, params)})"
    return dim.column


def _condition(f: FilterSpec, params: _Params, goals: Sequence[GoalDefinition]) -> str:
    values = params.bind(list(f.values), "Array(String)")
    if f.dimension.name == "goal":  # an event's goals are a list: any of them may match
        names = _goals_sql(goals, params)
        if f.operator in ("is", "is_not"):
            match = f"hasAny({names}, {values})"
        else:
            match = f"arrayExists(g -> multiSearchAnyCaseInsensitiveUTF8(g, {values}), {names})"
        return match if f.operator in ("is", "contains") else f"NOT {match}"
    column = _column_sql(f.dimension, params)
    if f.operator == "is":
        return f"has({values}, {column})"
    if f.operator == "is_not":
        return f"NOT has({values}, {column})"
    # contains: case-insensitive substring of any value
    match = f"multiSearchAnyCaseInsensitiveUTF8({column}, {values})"
    return match if f.operator == "contains" else f"NOT {match}"


def _page(spec: QuerySpec, params: _Params) -> str:
    return f"LIMIT {params.bind(spec.limit, 'UInt32')} OFFSET {params.bind(spec.offset, 'UInt32')}"


def _scope_conditions(spec: QuerySpec, scope: Scope, params: _Params) -> list[str]:
    return [_condition(f, params, spec.goals) for f in spec.filters if f.dimension.scope == scope]


class AnalyticsQueries:
    """Builds and runs the analytics SQL; returns plain rows (lists of dicts)."""

    def __init__(
        self, store: EventStore, *, rollups: bool = True, local_days: LocalDays | None = None
    ) -> None:
        self.store = store
        self.rollups = rollups
        self.local = local_days or LocalDays(store)
        """Which local days are ready: one per process (the app's) remembers it across requests."""

    def _rollup(self, spec: QuerySpec, scope: Scope, metrics: Sequence[str]) -> str | None:
        """The rollups (``sessions`` / ``events``) answering this query, or None (filters, odd timezones…)."""
        if (
            not self.rollups
            or len(spec.dimensions) > 1
            or not all(map(self._rolled_filter(spec), spec.filters))
        ):
            return None
        name = spec.dimensions[0].name if spec.dimensions else ""
        if name == "goal" and spec.goals:  # definitions apply at query time
            return None
        if name in _SUMMED_ONLY and scope == "session":
            if not set(metrics) <= _SUMMED_METRICS:
                return None
        elif name not in _ROLLED_UP[scope]:
            return None
        if not whole_hour_offsets(spec.timezone, spec.start, spec.end):
            return None
        return "sessions" if scope == "session" else "events"

    @staticmethod
    def _rolled_filter(spec: QuerySpec) -> Callable[[FilterSpec], bool]:
        """Filters the rollups can apply: ``is`` on the breakdown's own dimension (its rows' values)."""

        def rolled(f: FilterSpec) -> bool:
            return bool(spec.dimensions) and f.dimension == spec.dimensions[0] and f.operator == "is"

        return rolled

    async def _rollup_source(
        self, spec: QuerySpec, rollup: str, params: _Params, select: str, *, hourly: bool = False
    ) -> str:
        """A subquery of the rollup rows covering ``[start, end)``.

        Summed columns: whole UTC days from the daily table, the hours before the first and after
        the last whole day from the hourly one (only the hourly one with ``hourly=True``, for
        buckets in the site's timezone). Visitor states: whole site-local days from the local
        day table where the site's offset is ready (:mod:`.local_days`), the rest from the same
        rows as the sums. Rows of one part carry zeros or empty states for the other's columns.

        It has the columns ``select`` (the outer query's SQL) reads: each state read is a state
        deserialized, so none is read for nothing.
        """
        wanted = set(_WORD.findall(select))
        columns = [c for c in _ROLLUP_COLUMNS if c in wanted]
        states = [c for c in columns if c in _STATE_COLUMNS]
        name = spec.dimensions[0].name if spec.dimensions else ""
        site, dimension = params.bind(spec.website_id, "UUID"), params.bind(name, "String")
        key = f"website_id = {site} AND dimension = {dimension}"
        for f in spec.filters:  # only filters on the row values get here (see _rolled_filter)
            key += f" AND has({params.bind(list(f.values), 'Array(String)')}, value)"
        runs: list[tuple[int, date, date]] = []
        spans: list[tuple[datetime, datetime]] = [(spec.start, spec.end)]
        if states and spec.interval != "hour":
            runs, spans = local_days(spec.timezone, spec.start, spec.end)
            ready = await self.local.ready(spec.website_id) if runs else frozenset()
            spans += [_run_span(run) for run in runs if run[0] not in ready]
            runs = [run for run in runs if run[0] in ready]
        if not runs:
            return self._summed_source(spec, rollup, params, key, columns, hourly=hourly)
        parts = [self._summed_source(spec, rollup, params, key, columns, hourly=hourly, states=False)]
        parts = parts if len(states) < len(columns) else []
        local = " OR ".join(
            f"utc_offset = {params.bind(offset, 'Int32')} AND day >= {params.bind(first, 'Date')}"
            f" AND day < {params.bind(last, 'Date')}"
            for offset, first, last in runs
        )
        kept = ", ".join(c if c in states else f"toInt64(0) AS {c}" for c in columns)
        parts.append(
            "(SELECT toDateTime(day, 'UTC') - toIntervalSecond(utc_offset) AS hour, value, "
            f"{kept} FROM {rollup}_local_daily WHERE {key} AND ({local}))"
        )
        if spans:
            hours = " OR ".join(
                f"hour >= {params.bind(_utc(a)[:19], _HOUR)} AND hour < {params.bind(_utc(b)[:19], _HOUR)}"
                for a, b in spans
            )
            parts.append(f"(SELECT hour, value, {kept} FROM {rollup}_hourly WHERE {key} AND ({hours}))")
        return "(" + " UNION ALL ".join(parts) + ")"

    @staticmethod
    def _summed_source(
        spec: QuerySpec,
        rollup: str,
        params: _Params,
        key: str,
        wanted: Sequence[str],
        *,
        hourly: bool,
        states: bool = True,
    ) -> str:
        """The rollup rows of ``[start, end)`` from the hourly and UTC daily tables (see
        :meth:`_rollup_source`); with ``states=False`` their visitor states are left empty."""
        columns = ", ".join(
            [
                "hour",
                "value",
                *(c if states or c not in _STATE_COLUMNS else f"{_EMPTY} AS {c}" for c in wanted),
            ]
        )
        first_day = spec.start.replace(hour=0) + (timedelta(days=1) if spec.start.hour else timedelta(0))
        last_day = spec.end.replace(hour=0)
        start, end = (params.bind(_utc(t)[:19], _HOUR) for t in (spec.start, spec.end))
        whole_days = (last_day - first_day).days
        sums_only = not states or not _STATE_COLUMNS & set(wanted)
        if hourly or whole_days <= 0 or (sums_only and whole_days <= HOURLY_SUMS_DAYS):
            return f"(SELECT {columns} FROM {rollup}_hourly WHERE {key} AND hour >= {start} AND hour < {end})"
        first, last = (params.bind(_utc(t)[:19], _HOUR) for t in (first_day, last_day))
        return (
            f"(SELECT {columns} FROM {rollup}_hourly WHERE {key}"
            f" AND (hour >= {start} AND hour < {first} OR hour >= {last} AND hour < {end})"
            f" UNION ALL SELECT {columns.replace('hour', 'day AS hour', 1)} FROM {rollup}_daily"
            f" WHERE {key} AND day >= {first} AND day < {last})"
        )

    async def _rollup_split(
        self,
        spec: QuerySpec,
        rollup: str,
        metric_sql: dict[str, str],
        metrics: Sequence[str],
        *,
        key: str | None = None,
        visited: bool = False,
        hourly: bool = False,
    ) -> list[dict[str, Any]] | None:
        """``metrics`` over the rollups as two queries at once: those that merge visitor states, and
        those that add up sums (in one query, the parts of :meth:`_rollup_source` are read one after
        the other). Rows (``key``: grouped by that SQL over the rollup rows, ``{tz}`` the site's
        timezone; None: one row) with the metric names and ``key``, in no order; ``visited``: only
        keys with visits (a value whose visits were all cancelled is not a row). None when the
        metrics are of one kind only (one query then) or mix both in a way not written out here."""
        states: list[str] = []
        sums: list[str] = []
        mixed = False
        for metric in metrics:
            words = set(_WORD.findall(metric_sql[metric]))
            if words & _STATE_COLUMNS and words & _SUMMED_COLUMNS:
                if metric != "views_per_visit" or rollup != "events":
                    return None
                mixed = True  # sum(pageviews) / the sessions' state: from one side each
            elif words & _STATE_COLUMNS:
                states.append(metric)
            else:
                sums.append(metric)
        state_select = [f"{metric_sql[m]} AS m_{m}" for m in states]
        sum_select = [f"{metric_sql[m]} AS m_{m}" for m in sums]
        if mixed:
            state_select.append(f"{_R_SESSIONS} AS c_sessions")
            sum_select.append("sum(pageviews) AS c_pageviews")
        having = "sum(visits) > 0" if visited else ""
        if not state_select or not (sum_select or having):
            return None

        async def query(select: list[str], kept: str) -> tuple[str, _Params]:
            params = _Params()
            grouped = key.replace("{tz}", params.bind(spec.timezone, "String")) if key else ""
            columns = ", ".join([*([f"{grouped} AS key"] if key else []), *select])
            words = " ".join([columns, kept])
            source = await self._rollup_source(spec, rollup, params, words, hourly=hourly)
            sql = f"SELECT {columns} FROM {source}"
            if key:
                sql += " GROUP BY key" + (f" HAVING {kept}" if kept else "")
            return sql, params

        (state_sql, sp), (sum_sql, mp) = await query(state_select, ""), await query(sum_select, having)
        by_states, by_sums = await asyncio.gather(self._rows(state_sql, sp), self._rows(sum_sql, mp))
        keyed_states = {row.get("key"): row for row in by_states}
        keyed_sums = {row.get("key"): row for row in by_sums}
        keys = list(keyed_sums) if visited else list(dict.fromkeys([*keyed_sums, *keyed_states]))
        rows = []
        for k in keys:
            row = {**keyed_states.get(k, {}), **keyed_sums.get(k, {})}
            if mixed:
                visits, views = row.pop("c_sessions", 0), row.pop("c_pageviews", 0)
                row["views_per_visit"] = 0.0 if visits == 0 else views / visits
            rows.append({"key": k, **{m: row.get(m, _zero(m)) for m in metrics}})
        return rows

    async def _rows(self, sql: str, params: _Params) -> list[dict[str, Any]]:
        result = await self.store.query_shared(sql, parameters=params.values)
        names = [n[2:] if n.startswith("m_") else n for n in result.column_names]
        return [dict(zip(names, row, strict=True)) for row in result.result_rows]

    # --- building blocks ----------------------------------------------------------------

    def _event_where(self, spec: QuerySpec, params: _Params) -> str:
        """Events of the site in the range, matching event filters, in visits matching the rest."""
        site = params.bind(spec.website_id, "UUID")
        start = params.bind(_utc(spec.start), "DateTime64(3, 'UTC')")
        end = params.bind(_utc(spec.end), "DateTime64(3, 'UTC')")
        conditions = [f"website_id = {site}", f"timestamp >= {start}", f"timestamp < {end}"]
        conditions += _scope_conditions(spec, "event", params)
        session_conditions = _scope_conditions(spec, "session", params)
        if session_conditions:
            # Visits with events in the range (started before its end, ended after its start).
            conditions.append(
                "session_id IN (SELECT session_id FROM sessions"
                f" WHERE website_id = {site} AND started_at < {end} AND ended_at >= {start}"
                f" AND {' AND '.join(session_conditions)}"
                " GROUP BY session_id HAVING sum(sign) > 0)"
            )
        return " AND ".join(conditions)

    def _visits_subquery(
        self,
        spec: QuerySpec,
        params: _Params,
        columns: Sequence[str],
        *,
        attributed: bool = False,
        event_filters: bool = True,
    ) -> str:
        """Visits started in the range (``attributed``: every visit money can be credited to, from
        the lookback before the earliest anchor; joined to ``attributed`` after), matching the filters,
        one collapsed row each, ``columns`` from their latest version. An event filter keeps the
        visits with a matching event (in the range, for visits of the range)."""
        site = params.bind(spec.website_id, "UUID")
        if attributed:
            # Bounds, not the credited ids themselves: reading the CTE again would run it again.
            within = f"timestamp >= {conversions.VISITS_FROM}"
            started = f"started_at >= {conversions.VISITS_FROM} AND started_at < {conversions.VISITS_TO}"
            conditions = [f"website_id = {site}", started]
        else:
            start = params.bind(_utc(spec.start), "DateTime64(3, 'UTC')")
            end = params.bind(_utc(spec.end), "DateTime64(3, 'UTC')")
            within = f"timestamp >= {start} AND timestamp < {end}"
            conditions = [f"website_id = {site}", f"started_at >= {start}", f"started_at < {end}"]
        conditions += _scope_conditions(spec, "session", params)
        event_conditions = _scope_conditions(spec, "event", params) if event_filters else []
        if event_conditions:
            conditions.append(
                "session_id IN (SELECT session_id FROM events"
                f" WHERE website_id = {site} AND {within} AND {' AND '.join(event_conditions)})"
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

    # --- money ----------------------------------------------------------------------------
    # Money metrics join two sides grouped by the same keys (none, a time bucket, dimension
    # values): the traffic (t: visitors and converted visitors of events or visits, like every
    # other metric) and the money (m: conversions, see analytics.conversions). A FULL JOIN keeps
    # values with only one side; keys are Nullable so that money credited to no visit (unknown
    # source) stays a row of its own, with NULL values.

    @staticmethod
    def _window(spec: QuerySpec) -> MoneyWindow:
        return MoneyWindow(
            spec.website_id,
            spec.currency,
            spec.start,
            spec.end,
            spec.attribution,
            spec.lookback_days,
            spec.client_revenue,
        )

    def _with_money(
        self, spec: QuerySpec, params: _Params, columns: Sequence[str] = (), *, kept: bool = False
    ) -> str:
        """The ``conversions`` and ``attributed`` CTEs (``columns``: of each credited visit, see
        :func:`conversions.attributed`; ``kept``: the credits kept with the money, see
        :func:`credits.kept_credits`)."""
        params.values.update(conversions.parameters(self._window(spec)))
        if kept:
            params.values["cr_model"] = spec.attribution
            attributed = kept_credits(columns)
        else:
            attributed = conversions.attributed(spec.attribution, columns)
        return f"WITH {conversions.CONVERSIONS}, {attributed} "

    def _money(
        self,
        spec: QuerySpec,
        params: _Params,
        keys: Sequence[str],
        *,
        credited: bool,
        carried: bool = False,
        kept: bool = False,
        metrics: Sequence[str] | None = None,
    ) -> str:
        """Money grouped by ``keys`` (SQL over ``c`` conversions, ``a`` their credits, ``v`` their
        credited visits, ``e``).

        ``credited`` (or any filter): only money credited to a visit matching the filters.
        ``carried``: no filter, and the keys read the credited visit's columns from ``a``.
        ``kept``: ``a`` is the kept credits (:func:`credits.kept_credits`), and ``r_stale`` counts
        the conversions they do not answer for. ``metrics``: only the money columns these read."""
        joins = ""
        if carried:
            joins = " LEFT JOIN attributed AS a ON a.key = c.key"  # no visit: NULL keys
        elif credited or spec.filters:
            visits = self._visits_subquery(
                spec,
                params,
                sorted({d.column for d in spec.dimensions if d.scope == "session"}),
                attributed=True,
                event_filters=spec.scope == "session",
            )
            # No filter and a visit breakdown: money credited to no visit stays (LEFT, NULL keys).
            join = "LEFT" if not spec.filters and spec.scope == "session" else "INNER"
            joins = (
                f" {join} JOIN attributed AS a ON a.key = c.key"
                f" {join} JOIN ({visits}) AS v ON v.session_id = a.session_id"
            )
        if spec.scope == "event" and spec.dimensions:
            events = self._credited_events(spec, params)
            joins += f" INNER JOIN ({events}) AS e ON e.session_id = a.session_id"
        select = [*(f"CAST({k} AS Nullable(String)) AS k{i}" for i, k in enumerate(keys))]
        select.append(conversions.money_columns(names=_money_needed(metrics)))
        if kept:
            select.append(f"{KEPT_STALE} AS r_stale")
        group = f" GROUP BY {', '.join(f'k{i}' for i in range(len(keys)))}" if keys else ""
        return f"SELECT {', '.join(select)} FROM conversions AS c{joins}{group}"

    def _credited_events(self, spec: QuerySpec, params: _Params) -> str:
        """Each credited visit's distinct values of the event dimensions, among its events matching
        the event filters: money credited to a visit counts for every page, goal or prop value in it."""
        site = params.bind(spec.website_id, "UUID")
        columns = [f"{_column_sql(d, params, spec.goals)} AS e{i}" for i, d in enumerate(spec.dimensions)]
        conditions = [f"website_id = {site}", f"timestamp >= {conversions.VISITS_FROM}"]
        conditions += _scope_conditions(spec, "event", params)
        where = " AND ".join(conditions)
        return f"SELECT DISTINCT session_id, {', '.join(columns)} FROM events WHERE {where}"

    @staticmethod
    def _joined(traffic: str, money: str, keys: int, outputs: Sequence[str]) -> str:
        """The traffic and money sides (each grouped by ``k0…``) side by side, one row per key."""
        if not keys:
            return f"SELECT {', '.join(outputs)} FROM ({traffic}) AS t CROSS JOIN ({money}) AS m"
        on = " AND ".join(f"t.k{i} = m.k{i}" for i in range(keys))
        select = [f"coalesce(t.k{i}, m.k{i}) AS k{i}" for i in range(keys)] + list(outputs)
        return f"SELECT {', '.join(select)} FROM ({traffic}) AS t FULL OUTER JOIN ({money}) AS m ON {on}"

    async def aggregate_money(self, spec: QuerySpec, metrics: Sequence[str]) -> dict[str, Any]:
        params = _Params()
        head = self._with_money(spec, params)
        money = self._money(spec, params, [], credited=False, metrics=metrics)
        outputs = [f"{_MONEY_SQL[m]} AS m_{m}" for m in metrics]
        if not _TRAFFIC_MONEY & set(metrics):  # money alone: no visitor states to merge
            return (await self._rows(f"{head}SELECT {', '.join(outputs)} FROM ({money})", params))[0]
        rollup = self._rollup(spec, "event", ["visitors", "conversions"])
        if rollup is not None:
            # The visitors and the money at once (see _kept_rollup_rows), not one after the other.
            tp = _Params()
            source = await self._rollup_source(spec, rollup, tp, _R_VISITORS)
            # The statement aggregate_events runs for the totals' visitors: asked at once, read once.
            traffic = f"SELECT {_R_VISITORS} AS m_visitors FROM {source}"
            if {"conversions", "conversion_rate"} & set(metrics):
                states = "uniqCombined64MergeState(15)(converted) AS x_converted"
                converted = await self._rollup_source(spec, rollup, params, states)
                sql = (
                    f"{head}SELECT m.*, {_CONVERTED} AS x_union"
                    f" FROM ({money}) AS m CROSS JOIN (SELECT {states} FROM {converted}) AS v"
                )
            else:
                sql = f"{head}SELECT * FROM ({money})"
            visits, paid = await asyncio.gather(self._rows(traffic, tp), self._rows(sql, params))
            visitors = visits[0]["visitors"]
            return {m: _money_metric(m, paid[0], visitors, paid[0].get("x_union", 0)) for m in metrics}
        traffic = f"SELECT {_TRAFFIC['event']} FROM events WHERE {self._event_where(spec, params)}"
        return (await self._rows(head + self._joined(traffic, money, 0, outputs), params))[0]

    async def timeseries_money(self, spec: QuerySpec, metrics: Sequence[str]) -> list[dict[str, Any]]:
        """Money by the local bucket of its payment time; traffic by the bucket of its events."""
        assert spec.interval is not None
        params = _Params()
        head = self._with_money(spec, params)
        tz = params.bind(spec.timezone, "String")
        bucket = _BUCKETS[spec.interval]
        money = self._money(
            spec, params, [bucket.format(ts="c.paid_at", tz=tz)], credited=False, metrics=metrics
        )
        outputs = [f"{_MONEY_SQL[m]} AS m_{m}" for m in metrics]
        rollup = self._rollup(spec, "event", ["visitors", "conversions"])
        if not _TRAFFIC_MONEY & set(metrics):  # money alone: no visitor states to merge
            sql = f"{head}SELECT k0, {', '.join(outputs)} FROM ({money})"
        else:
            if rollup is not None:
                key = f"CAST({bucket.format(ts='hour', tz=tz)} AS Nullable(String)) AS k0"
                source = await self._rollup_source(spec, rollup, params, _TRAFFIC["rollup"], hourly=True)
                traffic = f"SELECT {key}, {_TRAFFIC['rollup']} FROM {source} GROUP BY k0"
            else:
                key = f"CAST({bucket.format(ts='timestamp', tz=tz)} AS Nullable(String)) AS k0"
                where = self._event_where(spec, params)
                traffic = f"SELECT {key}, {_TRAFFIC['event']} FROM events WHERE {where} GROUP BY k0"
            sql = head + self._joined(traffic, money, 1, outputs)
        return [{"bucket": row.pop("k0"), **row} for row in await self._rows(sql, params)]

    async def _money_breakdown(self, spec: QuerySpec) -> list[dict[str, Any]]:
        """A breakdown with money metrics: each conversion counts for the values of the visit it is
        credited to under ``spec.attribution`` (event dimensions: every value among that visit's events).

        Unfiltered, by visit attributes the credits keep, under their lookback: read from the kept
        credits, in one query that also counts the conversions they do not answer for (a refresh not
        landed yet); when there is one, the answer is attributed at query time instead, with the
        same rules (see :mod:`datafast.domain.analytics.credits`)."""
        carried = spec.scope == "session" and not spec.filters
        columns = [d.column for d in spec.dimensions] if carried else []
        if carried and set(columns) <= set(CARRIED) and spec.lookback_days == LOOKBACK:
            traffic_metrics = [m for m in spec.metrics if m not in MONEY_METRICS]
            rollup = self._rollup(spec, "session", [*traffic_metrics, "visitors", "conversions"])
            if rollup is not None:
                found = await self._kept_rollup_rows(spec, rollup)
                if found is not None:
                    return found
            else:
                rows = await self._money_rows(spec, carried=True, kept=True)
                stale = [row.pop("stale") for row in rows]
                # No row on a later page tells nothing about staleness: attribute at query time then.
                if sum(stale) == 0 and (rows or spec.offset == 0):
                    return rows
        return await self._money_rows(spec, carried=carried, kept=False)

    async def _kept_rollup_rows(self, spec: QuerySpec, rollup: str) -> list[dict[str, Any]] | None:
        """:meth:`_money_breakdown` from the rollups and the kept credits as two queries at once (the
        single query's sides run one after the other): the traffic (visitors and the other traffic
        metrics by value) and the money (by credited value, with each value's converted visitors
        merged with its payers: the rollup's states of converted visitors are read there). The rows
        are put together here with :data:`_MONEY_SQL`'s formulas, in :meth:`_order`'s order. None
        when the kept credits do not answer for every conversion (see :meth:`_money_breakdown`)."""
        traffic_metrics = [m for m in spec.metrics if m not in MONEY_METRICS]
        tp, mp = _Params(), _Params()
        select = [
            "value AS k0",
            *(f"{_SESSION_ROLLUP_SQL[m]} AS t_{m}" for m in traffic_metrics),
            f"{_R_VISITORS} AS x_visitors",
        ]
        # A value whose visits were all cancelled is not a row.
        source = await self._rollup_source(spec, rollup, tp, " ".join([*select, "sum(visits) > 0"]))
        traffic = f"SELECT {', '.join(select)} FROM {source} GROUP BY k0 HAVING sum(visits) > 0"

        head = self._with_money(spec, mp, [d.column for d in spec.dimensions], kept=True)
        keys = self._credited_keys(spec, "a", True)
        money = self._money(spec, mp, keys, credited=True, carried=True, kept=True, metrics=spec.metrics)
        converts = bool({"conversions", "conversion_rate"} & set(spec.metrics))
        if converts:
            states = "uniqCombined64MergeState(15)(converted) AS x_converted"
            converted = await self._rollup_source(spec, rollup, mp, states)
            # Converted visitors merged with the payers, as the single query's _CONVERTED (a value
            # with no traffic row merges its payers with an empty state there: x_payers).
            sql = (
                f"{head}SELECT coalesce(m.k0, v.k0) AS k0, m.* EXCEPT (k0), {_CONVERTED} AS x_union,"
                f" arrayReduce('uniqCombined64Merge(15)', [{_PAYERS}]) AS x_payers"
                f" FROM (SELECT 1 AS r_row, * FROM ({money})) AS m FULL OUTER JOIN"
                f" (SELECT CAST(value AS Nullable(String)) AS k0, {states} FROM {converted} GROUP BY k0) AS v"
                " ON v.k0 = m.k0"
            )
        else:
            sql = f"{head}SELECT 1 AS r_row, * FROM ({money})"
        traffic_rows, money_rows = await asyncio.gather(self._rows(traffic, tp), self._rows(sql, mp))
        if any(row["r_stale"] for row in money_rows):
            return None
        by_value = {row["k0"]: row for row in traffic_rows}
        paid = {row["k0"]: row for row in money_rows}
        rows: list[dict[str, Any]] = []
        for value in [*by_value, *(v for v, row in paid.items() if row["r_row"] and v not in by_value)]:
            t, m = by_value.get(value), paid.get(value, {})
            visitors = t["x_visitors"] if t is not None else 0
            converted = m.get("x_union" if t is not None else "x_payers", 0)
            row: dict[str, Any] = {"d0": value}
            for metric in spec.metrics:
                if metric in MONEY_METRICS:
                    row[metric] = _money_metric(metric, m, visitors, converted)
                else:
                    row[metric] = t[f"t_{metric}"] if t is not None else _zero(metric)
            rows.append(row)
        return _ordered(rows, spec)[spec.offset : spec.offset + spec.limit]

    async def _money_rows(self, spec: QuerySpec, *, carried: bool, kept: bool) -> list[dict[str, Any]]:
        """:meth:`_money_breakdown`'s query (``kept``: each row has ``stale``, the count of the
        conversions the kept credits do not answer for, over all rows)."""
        params = _Params()
        columns = [d.column for d in spec.dimensions] if carried else []
        head = self._with_money(spec, params, columns, kept=kept)
        visit = "a" if carried else "v"
        n = len(spec.dimensions)
        traffic_metrics = [m for m in spec.metrics if m not in MONEY_METRICS]
        rollup = self._rollup(spec, spec.scope, [*traffic_metrics, "visitors", "conversions"])
        if rollup is not None:
            metric_sql = _SESSION_ROLLUP_SQL if spec.scope == "session" else _EVENT_ROLLUP_SQL
            select = [
                "CAST(value AS Nullable(String)) AS k0",
                *(f"{metric_sql[m]} AS t_{m}" for m in traffic_metrics),
                _TRAFFIC["rollup"],
            ]
            # A value whose visits were all cancelled is not a row; a goal breakdown lists goals.
            rows_kept = ["sum(visits) > 0"] if spec.scope == "session" else []
            rows_kept += ["k0 != ''"] if spec.dimensions[0].name == "goal" else []
            source = await self._rollup_source(spec, rollup, params, " ".join([*select, *rows_kept]))
            traffic = f"SELECT {', '.join(select)} FROM {source}"
            having = f" HAVING {' AND '.join(rows_kept)}" if rows_kept else ""
            if spec.scope == "session":
                credited = self._credited_keys(spec, visit, kept)
                money = self._money(
                    spec, params, credited, credited=True, carried=carried, kept=kept, metrics=spec.metrics
                )
            else:
                money = self._money(
                    spec, params, [f"e.e{i}" for i in range(n)], credited=True, metrics=spec.metrics
                )
        elif spec.scope == "session":
            inner = self._visits_subquery(spec, params, sorted({d.column for d in spec.dimensions}))
            keys = [f"CAST(s_{d.column} AS Nullable(String)) AS k{i}" for i, d in enumerate(spec.dimensions)]
            traffic_sql = [f"{_SESSION_SQL[m]} AS t_{m}" for m in traffic_metrics]
            traffic = f"SELECT {', '.join([*keys, *traffic_sql, _TRAFFIC['session']])} FROM ({inner})"
            # Money credited to no visit (LEFT JOIN: an empty session_id) keeps NULL values.
            credited = self._credited_keys(spec, visit, kept)
            money = self._money(
                spec, params, credited, credited=True, carried=carried, kept=kept, metrics=spec.metrics
            )
            having = ""
        else:
            keys = [
                f"CAST({_column_sql(d, params, spec.goals)} AS Nullable(String)) AS k{i}"
                for i, d in enumerate(spec.dimensions)
            ]
            traffic_sql = [f"{_EVENT_SQL[m]} AS t_{m}" for m in traffic_metrics]
            where = self._event_where(spec, params)
            goal_rows = any(d.name == "goal" for d in spec.dimensions)
            selected = ", ".join([*keys, *traffic_sql, _TRAFFIC["goal" if goal_rows else "event"]])
            traffic = f"SELECT {selected} FROM events WHERE {where}"
            money = self._money(
                spec, params, [f"e.e{i}" for i in range(n)], credited=True, metrics=spec.metrics
            )
            # A goal breakdown lists goals, not the events without one.
            goals = [f"k{i} != ''" for i, d in enumerate(spec.dimensions) if d.name == "goal"]
            having = f" HAVING {' AND '.join(goals)}" if goals else ""
        traffic += f" GROUP BY {', '.join(f'k{i}' for i in range(n))}{having}"
        outputs = [
            f"{_MONEY_SQL[m]} AS m_{m}" if m in MONEY_METRICS else f"t_{m} AS m_{m}" for m in spec.metrics
        ]
        # Summed before the page is cut: every row counts.
        stale = ", sum(r_stale) OVER () AS stale" if kept else ""
        joined = self._joined(traffic, money, n, [*outputs, *(["r_stale"] if kept else [])])
        dims = [f"k{i}" for i in range(n)]
        except_ = ", ".join([*dims, *(["r_stale"] if kept else [])])
        sql = (
            f"{head}SELECT {', '.join(f'k{i} AS d{i}' for i in range(n))}, * EXCEPT ({except_}){stale}"
            f" FROM ({joined}) ORDER BY {self._order(spec, [f'd{i}' for i in range(n)])}"
            f" {_page(spec, params)}"
        )
        return await self._rows(sql, params)

    @staticmethod
    def _credited_keys(spec: QuerySpec, visit: str, kept: bool) -> list[str]:
        """Each dimension's value of the visit a conversion is credited to (NULL: none)."""
        if kept:
            return [kept_credited(d.column) for d in spec.dimensions]
        return [f"if({visit}.session_id = '', NULL, {visit}.s_{d.column})" for d in spec.dimensions]

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
        if MONEY_METRICS & set(spec.metrics):
            return await self._money_breakdown(spec)
        params = _Params()
        dims = [f"d{i}" for i in range(len(spec.dimensions))]
        rollup = self._rollup(spec, spec.scope, spec.metrics)
        extra: list[str] = []
        if rollup is not None:
            metric_sql = _SESSION_ROLLUP_SQL if spec.scope == "session" else _EVENT_ROLLUP_SQL
            split = await self._rollup_split(
                spec, rollup, metric_sql, spec.metrics, key="value", visited=spec.scope == "session"
            )
            if split is not None:
                goal = spec.dimensions[0].name == "goal"  # a goal breakdown lists goals
                found = [{"d0": row.pop("key"), **row} for row in split if not goal or row["key"] != ""]
                return _ordered(found, spec)[spec.offset : spec.offset + spec.limit]
            select = ["value AS d0", *(f"{metric_sql[m]} AS m_{m}" for m in spec.metrics)]
            # A value whose visits were all cancelled (changed since) is not a row.
            extra = ["sum(visits) > 0"] if spec.scope == "session" else []
            source = await self._rollup_source(spec, rollup, params, " ".join([*select, *extra]))
            where = ""
            extra += ["d0 != ''"] if spec.dimensions[0].name == "goal" else []
        elif spec.scope == "session":
            columns = [d.column for d in spec.dimensions]
            inner = self._visits_subquery(spec, params, sorted(set(columns)))
            select = [f"s_{d.column} AS d{i}" for i, d in enumerate(spec.dimensions)]
            select += [f"{_SESSION_SQL[m]} AS m_{m}" for m in spec.metrics]
            source = f"({inner})"
            where = ""
        else:
            select = [f"{_column_sql(d, params, spec.goals)} AS d{i}" for i, d in enumerate(spec.dimensions)]
            select += [f"{_EVENT_SQL[m]} AS m_{m}" for m in spec.metrics]
            source = "events"
            where = " WHERE " + self._event_where(spec, params)
            # A goal breakdown lists goals, not the events without one.
            extra = [f"d{i} != ''" for i, d in enumerate(spec.dimensions) if d.name == "goal"]
        having = f" HAVING {' AND '.join(extra)}" if extra else ""
        sql = (
            f"SELECT {', '.join(select)} FROM {source}{where}"
            f" GROUP BY {', '.join(dims)}{having} ORDER BY {self._order(spec, dims)}"
            f" {_page(spec, params)}"
        )
        return await self._rows(sql, params)

    async def aggregate_events(self, spec: QuerySpec, metrics: Sequence[str]) -> dict[str, Any]:
        params = _Params()
        rollup = self._rollup(spec, "event", metrics)
        if rollup is not None and (
            split := await self._rollup_split(spec, rollup, _EVENT_ROLLUP_SQL, metrics)
        ):
            return {m: split[0][m] for m in metrics}
        if rollup is not None:
            select = ", ".join(f"{_EVENT_ROLLUP_SQL[m]} AS m_{m}" for m in metrics)
            sql = f"SELECT {select} FROM {await self._rollup_source(spec, rollup, params, select)}"
        else:
            select = ", ".join(f"{_EVENT_SQL[m]} AS m_{m}" for m in metrics)
            sql = f"SELECT {select} FROM events WHERE {self._event_where(spec, params)}"
        return (await self._rows(sql, params))[0]

    async def aggregate_visits(self, spec: QuerySpec, metrics: Sequence[str]) -> dict[str, Any]:
        params = _Params()
        rollup = self._rollup(spec, "session", metrics)
        if rollup is not None and (
            split := await self._rollup_split(spec, rollup, _SESSION_ROLLUP_SQL, metrics)
        ):
            return {m: split[0][m] for m in metrics}
        if rollup is not None:
            select = ", ".join(f"{_SESSION_ROLLUP_SQL[m]} AS m_{m}" for m in metrics)
            sql = f"SELECT {select} FROM {await self._rollup_source(spec, rollup, params, select)}"
        else:
            select = ", ".join(f"{_SESSION_SQL[m]} AS m_{m}" for m in metrics)
            sql = f"SELECT {select} FROM ({self._visits_subquery(spec, params, [])})"
        return (await self._rows(sql, params))[0]

    async def timeseries_events(self, spec: QuerySpec, metrics: Sequence[str]) -> list[dict[str, Any]]:
        return await self._timeseries(spec, metrics, "event")

    async def timeseries_visits(self, spec: QuerySpec, metrics: Sequence[str]) -> list[dict[str, Any]]:
        return await self._timeseries(spec, metrics, "session")

    async def _timeseries(
        self, spec: QuerySpec, metrics: Sequence[str], scope: Scope
    ) -> list[dict[str, Any]]:
        assert spec.interval is not None
        params = _Params()
        rollup = self._rollup(spec, scope, metrics)
        if rollup is not None:
            split = await self._rollup_split(
                spec,
                rollup,
                _SESSION_ROLLUP_SQL if scope == "session" else _EVENT_ROLLUP_SQL,
                metrics,
                key=_BUCKETS[spec.interval].format(ts="hour", tz="{tz}"),
                hourly=True,
            )
            if split is not None:
                return [{"bucket": row.pop("key"), **row} for row in split]
        if rollup is not None:
            metric_sql, ts = _SESSION_ROLLUP_SQL if scope == "session" else _EVENT_ROLLUP_SQL, "hour"
        else:
            metric_sql, ts = (_SESSION_SQL, "s_started") if scope == "session" else (_EVENT_SQL, "timestamp")
        select = ", ".join(f"{metric_sql[m]} AS m_{m}" for m in metrics)
        if rollup is not None:
            source = await self._rollup_source(spec, rollup, params, select, hourly=True)
        elif scope == "session":
            source = f"({self._visits_subquery(spec, params, [])})"
        else:
            source = f"events WHERE {self._event_where(spec, params)}"
        bucket = _BUCKETS[spec.interval].format(ts=ts, tz=params.bind(spec.timezone, "String"))
        sql = f"SELECT {bucket} AS bucket, {select} FROM {source} GROUP BY bucket ORDER BY bucket"
        return await self._rows(sql, params)

    async def current_visitors(self, website_id: str, since: datetime) -> tuple[int, float | None]:
        """Distinct visitors with an event since ``since``, and the newest of those events' time
        (Unix seconds; None when there is none)."""
        params = _Params()
        site = params.bind(website_id, "UUID")
        start = params.bind(_utc(since), "DateTime64(3, 'UTC')")
        rows = await self._rows(
            "SELECT uniqExact(visitor_id) AS visitors, toUnixTimestamp64Milli(max(timestamp)) AS newest"
            f" FROM events WHERE website_id = {site} AND timestamp >= {start}",
            params,
        )
        visitors = int(rows[0]["visitors"])
        return visitors, (int(rows[0]["newest"]) / 1000 if visitors else None)

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
                conditions.append(f"has({_goals_sql(spec.goals, params)}, {value})")
        window = params.bind(window_seconds, "UInt64")
        sql = (
            "SELECT level, count() AS visitors FROM ("
            f"SELECT visitor_id, windowFunnel({window})(toDateTime(timestamp), {', '.join(conditions)})"
            " AS level"
            f" FROM events WHERE {where} GROUP BY visitor_id) GROUP BY level"
        )
        reached = {int(r["level"]): int(r["visitors"]) for r in await self._rows(sql, params)}
        return [sum(n for level, n in reached.items() if level >= i) for i in range(1, len(steps) + 1)]

    async def journeys(self, spec: QuerySpec, steps: int, goal: str | None) -> list[dict[str, Any]]:
        """The visits' paths from their entry page, most common first.

        A path is the visit's first ``steps`` pages in the order viewed, a page reloaded or repeated
        in a row counted once; ``more``: the visit saw further pages. Without ``goal``: every visit,
        ``conversions`` those that completed any goal. With it: the visits that completed that
        goal, their path the pages viewed before its first completion."""
        params = _Params()
        where = self._event_where(spec, params)
        goals = _goals_sql(spec.goals, params)
        completes = (
            f"has({goals}, {params.bind(goal, 'String')})"
            if goal
            else f"({_CONVERSION} OR notEmpty({goals}))"
        )
        # Ordered by time, then id: (timestamp, event_id, completes, is a pageview, path).
        events = (
            f"arraySort(groupArray((timestamp, event_id, {completes}, event_type = 'pageview', pathname)))"
        )
        done = "arrayFirstIndex(e -> e.3, events)"
        viewed = (
            "arrayCompact(arrayMap(e -> e.5, arrayFilter((e, i) -> e.4 AND (done = 0 OR i < done),"
            " events, arrayEnumerate(events))))"
            if goal
            else "arrayCompact(arrayMap(e -> e.5, arrayFilter(e -> e.4, events)))"
        )
        limit = params.bind(steps, "UInt8")
        sql = (
            "SELECT path, more, count() AS visits, countIf(done > 0) AS conversions,"
            " sum(count()) OVER () AS total FROM ("
            f" SELECT session_id, {events} AS events, {done} AS done, {viewed} AS pages,"
            f" arraySlice(pages, 1, {limit}) AS path, length(pages) > {limit} AS more"
            f" FROM events WHERE {where} GROUP BY session_id"
            f" HAVING notEmpty(path){' AND done > 0' if goal else ''})"
            " GROUP BY path, more ORDER BY visits DESC, conversions DESC, path ASC, more ASC"
            f" {_page(spec, params)}"
        )
        return await self._rows(sql, params)

    async def visitors(self, spec: QuerySpec) -> list[dict[str, Any]]:
        """Visitors with events in the range: first source seen in the range and their totals.

        Their revenue is the tracker's, counted as money is (the site's policy and cap, its currency,
        the double-count rule)."""
        params = _Params()
        where = self._event_where(spec, params)
        params.values.update(
            conversions.client_parameters(spec.client_revenue, spec.website_id, spec.currency)
        )
        revenue = f"sum({conversions.COUNTED_REVENUE})"
        sql = (
            "SELECT visitor_id, min(timestamp) AS first_seen, max(timestamp) AS last_seen,"
            " argMin(referrer_source, timestamp) AS source, argMin(channel, timestamp) AS channel,"
            " argMin(country, timestamp) AS country, argMin(device, timestamp) AS device,"
            " uniqExact(session_id) AS visits, countIf(event_type = 'pageview') AS pageviews,"
            f" count() AS events, countIf({_CONVERSION}) AS conversions, {revenue} AS m_revenue"
            f" FROM events WHERE {where} GROUP BY visitor_id"
            f" ORDER BY last_seen DESC, visitor_id ASC {_page(spec, params)}"
        )
        return await self._rows(sql, params)

    async def property_keys(self, spec: QuerySpec) -> list[dict[str, Any]]:
        """The custom-property keys of the range's events with their events, most used first.

        ``identify`` traits are not custom properties: they describe a person, not an event."""
        params = _Params()
        where = self._event_where(spec, params)
        sql = (
            "SELECT key, count() AS events FROM events ARRAY JOIN mapKeys(props) AS key"
            f" WHERE {where} AND event_type != 'identify'"
            f" GROUP BY key ORDER BY events DESC, key ASC {_page(spec, params)}"
        )
        return await self._rows(sql, params)

    async def identities(self, website_id: str, visitor_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """Each visitor's latest ``identify``: ``{visitor_id: (user_id, name)}`` (members only)."""
        if not visitor_ids:
            return {}
        params = _Params()
        site = params.bind(website_id, "UUID")
        visitors = params.bind(list(visitor_ids), "Array(String)")
        rows = await self._rows(
            "SELECT visitor_id, argMax(props['user_id'], timestamp) AS user_id,"
            " argMax(props['name'], timestamp) AS name FROM events"
            f" WHERE website_id = {site} AND event_type = 'identify' AND visitor_id IN {visitors}"
            " GROUP BY visitor_id",
            params,
        )
        return {r["visitor_id"]: (r["user_id"], r["name"]) for r in rows}

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

    async def visitor_events(
        self,
        website_id: str,
        visitor_id: str,
        limit: int,
        currency: str = "",
        client_revenue: ClientRevenue = DEFAULT_CLIENT_REVENUE,
    ) -> list[dict[str, Any]]:
        """A visitor's events, each with what its revenue counts for (``counted_revenue``)."""
        params = _Params()
        site = params.bind(website_id, "UUID")
        visitor = params.bind(visitor_id, "String")
        params.values.update(conversions.client_parameters(client_revenue, website_id, currency))
        sql = (
            "SELECT timestamp, session_id, event_type, event_name, pathname, goal_name, revenue, currency,"
            f" {conversions.COUNTED_REVENUE} AS counted_revenue"
            f" FROM events WHERE website_id = {site} AND visitor_id = {visitor}"
            f" ORDER BY timestamp, event_id LIMIT {params.bind(limit, 'UInt32')}"
        )
        return await self._rows(sql, params)

    # --- imported history (see analytics.imported) ---------------------------------------

    async def imported_bounds(self, website_id: str, timezone: str) -> tuple[date, date, date | None] | None:
        """(first, last) imported day of the site and its first native event's local day (None
        without native events); None when nothing was imported."""
        params = _Params()
        site = params.bind(website_id, "UUID")
        imported = await self._rows(
            f"SELECT count() AS n, min(day) AS first, max(day) AS last FROM imported_daily"
            f" WHERE website_id = {site} AND dimension = ''",
            params,
        )
        if not imported or not imported[0]["n"]:
            return None
        params = _Params()
        site = params.bind(website_id, "UUID")
        tz = params.bind(timezone, "String")
        native = await self._rows(
            f"SELECT count() AS n, toDate(toTimeZone(min(timestamp), {tz})) AS first"
            f" FROM events WHERE website_id = {site}",
            params,
        )
        first_native = native[0]["first"] if native and native[0]["n"] else None
        return imported[0]["first"], imported[0]["last"], first_native

    async def imported_rows(
        self, website_id: str, dimension: str, first: date, last: date, by_day: bool
    ) -> list[dict[str, Any]]:
        """Imported sums per value (and per day when ``by_day``) of local days ``[first, last]``."""
        params = _Params()
        keys = "day, value" if by_day else "value"
        sql = (
            f"SELECT {keys}, sum(visitors) AS visitors, sum(visits) AS visits,"
            " sum(pageviews) AS pageviews, sum(bounces) AS bounces, sum(visit_duration) AS duration"
            f" FROM imported_daily WHERE website_id = {params.bind(website_id, 'UUID')}"
            f" AND dimension = {params.bind(dimension, 'String')}"
            f" AND day >= {params.bind(first, 'Date')} AND day <= {params.bind(last, 'Date')}"
            f" GROUP BY {keys}"
        )
        return await self._rows(sql, params)

    async def scroll_depths(self, spec: QuerySpec, pages: Sequence[str]) -> dict[str, float]:
        """Each page's scroll depth (``page_scrolls``): the average over its visitors of the deepest
        point each reached, in % of the page's height. Several reports of one visitor and page
        (left, came back, went deeper) count once, as their deepest. With filters, the visitors
        are those with events matching them in the range (a visitor-level match: scroll reports
        carry no visit). Pages without reports are left out."""
        if not pages:
            return {}
        params = _Params()
        site = params.bind(spec.website_id, "UUID")
        start = params.bind(_utc(spec.start), "DateTime64(3, 'UTC')")
        end = params.bind(_utc(spec.end), "DateTime64(3, 'UTC')")
        conditions = [
            f"website_id = {site}",
            f"timestamp >= {start}",
            f"timestamp < {end}",
            f"pathname IN {params.bind(list(pages), 'Array(String)')}",
        ]
        if spec.filters:
            matching = self._event_where(spec, params)
            conditions.append(f"visitor_id IN (SELECT visitor_id FROM events WHERE {matching})")
        sql = (
            "SELECT pathname, avg(deepest) AS depth FROM (SELECT pathname, visitor_id, max(depth) AS deepest"
            f" FROM page_scrolls WHERE {' AND '.join(conditions)} GROUP BY pathname, visitor_id)"
            " GROUP BY pathname"
        )
        return {str(row["pathname"]): float(row["depth"]) for row in await self._rows(sql, params)}

"""Hourly rollups for the Stats API: per site, UTC hour, dimension and value, kept by materialized views.

``sessions_hourly`` sums the sign-weighted visit columns (exact, like the raw table) and keeps
``uniqExact`` states of visitor hashes (``cityHash64(visitor_id)``) for visitors and converted
visitors; ``events_hourly`` does the same for events (which are never rewritten). The dimension
``''`` holds the site's totals. A visitor state counts every version of a visit, so it is exact
for values that never change during a visit; ``exit_page`` does change (each pageview), so for
it only the summed columns are used (visits, pageviews, bounces, duration, revenue).

Queries without filters read these instead of the raw tables when the site's timezone keeps
whole-hour offsets over the range (see ``datafast.domain.analytics.queries``); both paths
give the same numbers (``tests/integration/analytics/test_rollups.py``). The migration fills
the rollups from existing rows before creating the views.
"""

from datafast.db.clickhouse import CreateTable, RawSQL, Table

SESSION_DIMENSIONS = [
    ("source", "referrer_source"),
    ("channel", "channel"),
    ("referrer", "referrer"),
    ("utm_source", "utm_source"),
    ("utm_medium", "utm_medium"),
    ("utm_campaign", "utm_campaign"),
    ("utm_term", "utm_term"),
    ("utm_content", "utm_content"),
    ("entry_page", "entry_page"),
    ("exit_page", "exit_page"),
    ("country", "country"),
    ("region", "region"),
    ("city", "city"),
    ("device", "device"),
    ("browser", "browser"),
    ("os", "os"),
]
EVENT_DIMENSIONS = [("page", "pathname"), ("hostname", "hostname"), ("goal", "goal_name")]

_SUM = "SimpleAggregateFunction(sum, Int64)"
_UNIQ = "AggregateFunction(uniqExact, UInt64)"
_KEY = [
    ("website_id", "UUID"),
    ("hour", "DateTime('UTC')"),
    ("dimension", "LowCardinality(String)"),
    ("value", "String"),
]

SESSIONS_HOURLY = Table(
    name="sessions_hourly",
    columns=[
        *_KEY,
        ("visits", _SUM),
        ("pageviews", _SUM),
        ("events", _SUM),
        ("bounces", _SUM),
        ("duration", _SUM),
        ("revenue", _SUM),
        ("visitors", _UNIQ),
        ("converted", _UNIQ),
    ],
    engine="AggregatingMergeTree()",
    partition_by="toYYYYMM(hour)",
    order_by="(website_id, dimension, hour, value)",
    sharding_key="cityHash64(website_id)",
)
EVENTS_HOURLY = Table(
    name="events_hourly",
    columns=[
        *_KEY,
        ("events", _SUM),
        ("pageviews", _SUM),
        ("purchases", _SUM),
        ("revenue", _SUM),
        ("visitors", _UNIQ),
        ("sessions", _UNIQ),
        ("converted", _UNIQ),
    ],
    engine="AggregatingMergeTree()",
    partition_by="toYYYYMM(hour)",
    order_by="(website_id, dimension, hour, value)",
    sharding_key="cityHash64(website_id)",
)


def _pairs(dimensions: list[tuple[str, str]]) -> str:
    return ", ".join(["('', '')", *(f"('{name}', toString({column}))" for name, column in dimensions)])


# DDL of our own: no value from outside reaches these statements.
_SESSIONS_SELECT = (
    "SELECT website_id, toStartOfHour(started_at) AS hour, d.1 AS dimension, d.2 AS value,"  # noqa: S608
    " sum(sign) AS visits, sum(sign * pageviews) AS pageviews, sum(sign * events) AS events,"
    " sum(sign * is_bounce) AS bounces, sum(sign * duration) AS duration, sum(sign * revenue) AS revenue,"
    " uniqExactStateIf(cityHash64(visitor_id), sign > 0) AS visitors,"
    " uniqExactStateIf(cityHash64(visitor_id), sign > 0 AND goals > 0) AS converted"
    " FROM {source} ARRAY JOIN [" + _pairs(SESSION_DIMENSIONS) + "] AS d"
    " GROUP BY website_id, hour, dimension, value"
)
_EVENTS_SELECT = (
    "SELECT website_id, toStartOfHour(timestamp) AS hour, d.1 AS dimension, d.2 AS value,"  # noqa: S608
    " count() AS events, countIf(event_type = 'pageview') AS pageviews,"
    " countIf(event_type = 'purchase') AS purchases, sum(revenue) AS revenue,"
    " uniqExactState(cityHash64(visitor_id)) AS visitors, uniqExactState(cityHash64(session_id)) AS sessions,"
    " uniqExactStateIf(cityHash64(visitor_id), event_type IN ('goal', 'purchase')) AS converted"
    " FROM {source} ARRAY JOIN [" + _pairs(EVENT_DIMENSIONS) + "] AS d"
    " GROUP BY website_id, hour, dimension, value"
)


def _statements(storage: str, on_cluster: str, local: str) -> list[str]:
    statements = []
    for rollup, select, source in (
        ("sessions_hourly", _SESSIONS_SELECT, "sessions"),
        ("events_hourly", _EVENTS_SELECT, "events"),
    ):
        target, raw = f"{{db}}.{rollup}{storage}", f"{{db}}.{source}{local}"
        statements += [
            # Fill from the rows already there, then keep up with new inserts.
            f"TRUNCATE TABLE IF EXISTS {target}{on_cluster}",
            f"INSERT INTO {target} " + select.format(source=raw),
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{rollup}_mv{on_cluster} TO {target} AS "
            + select.format(source=raw),
        ]
    return statements


OPERATIONS = [
    CreateTable(SESSIONS_HOURLY),
    CreateTable(EVENTS_HOURLY),
    RawSQL(
        single_node=_statements("", "", ""),
        # On a cluster each node's views feed its local rollup shards from its local raw shards.
        cluster=_statements("_local", "{on_cluster}", "_local"),
    ),
]

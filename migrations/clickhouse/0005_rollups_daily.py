"""Rollups rebuilt for speed: HyperLogLog visitor states, and daily tables beside the hourly ones.

0003's hourly rollups kept ``uniqExact`` states: exact, but a month of a busy site merges
hundreds of thousands of visitor hashes per row (seconds per dashboard on 10M events). Here
every visitor state is ``uniqCombined64(15)`` — exact up to about a thousand distinct visitors
per state and within about 1% above (64-bit hashes, HyperLogLog with 2^15 cells) — and
``sessions_daily`` / ``events_daily`` hold the same columns per UTC day, fed from the hourly
rollups by a second materialized view. A query over site-local days reads whole UTC days from
the daily tables and the hours at both ends from the hourly ones (see
``datafast.domain.analytics.queries``); the raw-table queries use the same function on the
same hashes, so both paths give the same numbers.

The migration drops 0003's views and tables, creates the new ones and fills them from the raw
tables (hourly) and the hourly rollups (daily) before creating the views. Run it while no
events are being written (``datafast migrate`` before starting the servers and workers).
"""

from datafast.db.clickhouse import CreateTable, RawSQL, Table

UNIQ = "uniqCombined64(15)"


def _uniq(combinator: str) -> str:
    """``uniqCombined64<combinator>(15)``: the visitor-state function with a combinator."""
    return f"uniqCombined64{combinator}(15)"


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
_STATE = f"AggregateFunction({UNIQ}, UInt64)"
SESSION_SUMS = ["visits", "pageviews", "events", "bounces", "duration", "revenue"]
SESSION_STATES = ["visitors", "converted"]
EVENT_SUMS = ["events", "pageviews", "purchases", "revenue"]
EVENT_STATES = ["visitors", "sessions", "converted"]


def _rollup(name: str, time_column: str, sums: list[str], states: list[str]) -> Table:
    return Table(
        name=name,
        columns=[
            ("website_id", "UUID"),
            (time_column, "DateTime('UTC')"),
            ("dimension", "LowCardinality(String)"),
            ("value", "String"),
            *((column, _SUM) for column in sums),
            *((column, _STATE) for column in states),
        ],
        engine="AggregatingMergeTree()",
        partition_by=f"toYYYYMM({time_column})",
        order_by=f"(website_id, dimension, {time_column}, value)",
        # A query reads a few hundred rows of one site and dimension; every row of a granule it
        # touches is deserialized, and a HyperLogLog state costs ~0.1 ms: keep granules small.
        settings={"index_granularity": 256},
        sharding_key="cityHash64(website_id)",
    )


SESSIONS_HOURLY = _rollup("sessions_hourly", "hour", SESSION_SUMS, SESSION_STATES)
EVENTS_HOURLY = _rollup("events_hourly", "hour", EVENT_SUMS, EVENT_STATES)
SESSIONS_DAILY = _rollup("sessions_daily", "day", SESSION_SUMS, SESSION_STATES)
EVENTS_DAILY = _rollup("events_daily", "day", EVENT_SUMS, EVENT_STATES)


def _pairs(dimensions: list[tuple[str, str]]) -> str:
    return ", ".join(["('', '')", *(f"('{name}', toString({column}))" for name, column in dimensions)])


# DDL of our own: no value from outside reaches these statements.
_SESSIONS_SELECT = (
    "SELECT website_id, toStartOfHour(started_at) AS hour, d.1 AS dimension, d.2 AS value,"  # noqa: S608
    " sum(sign) AS visits, sum(sign * pageviews) AS pageviews, sum(sign * events) AS events,"
    " sum(sign * is_bounce) AS bounces, sum(sign * duration) AS duration, sum(sign * revenue) AS revenue,"
    f" {_uniq('StateIf')}(cityHash64(visitor_id), sign > 0) AS visitors,"
    f" {_uniq('StateIf')}(cityHash64(visitor_id), sign > 0 AND goals > 0) AS converted"
    " FROM {source} ARRAY JOIN [" + _pairs(SESSION_DIMENSIONS) + "] AS d"
    " GROUP BY website_id, hour, dimension, value"
)
_EVENTS_SELECT = (
    "SELECT website_id, toStartOfHour(timestamp) AS hour, d.1 AS dimension, d.2 AS value,"  # noqa: S608
    " count() AS events, countIf(event_type = 'pageview') AS pageviews,"
    " countIf(event_type = 'purchase') AS purchases, sum(revenue) AS revenue,"
    f" {_uniq('State')}(cityHash64(visitor_id)) AS visitors,"
    f" {_uniq('State')}(cityHash64(session_id)) AS sessions,"
    f" {_uniq('StateIf')}(cityHash64(visitor_id), event_type IN ('goal', 'purchase')) AS converted"
    " FROM {source} ARRAY JOIN [" + _pairs(EVENT_DIMENSIONS) + "] AS d"
    " GROUP BY website_id, hour, dimension, value"
)


def _daily_select(sums: list[str], states: list[str]) -> str:
    merge = _uniq("MergeState")
    columns = [f"sum({c}) AS {c}" for c in sums] + [f"{merge}({c}) AS {c}" for c in states]
    return (
        "SELECT website_id, toStartOfDay(hour) AS day, dimension, value, "  # noqa: S608
        + ", ".join(columns)
        + " FROM {source} GROUP BY website_id, day, dimension, value"
    )


def _drops(cluster: bool) -> list[str]:
    on_cluster = "{on_cluster}" if cluster else ""
    statements = [
        f"DROP VIEW IF EXISTS {{db}}.{view}{on_cluster} SYNC"
        for view in ("sessions_hourly_mv", "events_hourly_mv", "sessions_daily_mv", "events_daily_mv")
    ]
    tables = ["sessions_hourly", "events_hourly"]
    tables += [f"{table}_local" for table in tables] if cluster else []
    return statements + [f"DROP TABLE IF EXISTS {{db}}.{table}{on_cluster} SYNC" for table in tables]


def _view(name: str, target: str, select: str) -> str:
    return f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{name} TO {{db}}.{target} AS {select}"


def _fill(cluster: bool) -> list[str]:
    """Fill the rollups, then let views keep them up to date.

    On a cluster the fill reads every shard through the Distributed tables and writes through
    them too (each row to its site's shard, synchronously so the daily fill sees the hourly
    rows); each node's views then feed its local rollup shards from its local raw shards.
    """
    on_cluster, local = ("{on_cluster}", "_local") if cluster else ("", "")
    sync = " SETTINGS insert_distributed_sync = 1" if cluster else ""
    statements = []
    for hourly, daily, raw, select, sums, states in (
        ("sessions_hourly", "sessions_daily", "sessions", _SESSIONS_SELECT, SESSION_SUMS, SESSION_STATES),
        ("events_hourly", "events_daily", "events", _EVENTS_SELECT, EVENT_SUMS, EVENT_STATES),
    ):
        daily_select = _daily_select(sums, states)
        statements += [
            f"TRUNCATE TABLE IF EXISTS {{db}}.{hourly}{local}{on_cluster}",
            f"TRUNCATE TABLE IF EXISTS {{db}}.{daily}{local}{on_cluster}",
            f"INSERT INTO {{db}}.{hourly} " + select.format(source=f"{{db}}.{raw}") + sync,
            f"INSERT INTO {{db}}.{daily} " + daily_select.format(source=f"{{db}}.{hourly}") + sync,
            # Raw inserts feed the hourly rollup; its inserted blocks feed the daily one.
            _view(
                f"{hourly}_mv{on_cluster}", f"{hourly}{local}", select.format(source=f"{{db}}.{raw}{local}")
            ),
            _view(
                f"{daily}_mv{on_cluster}",
                f"{daily}{local}",
                daily_select.format(source=f"{{db}}.{hourly}{local}"),
            ),
        ]
    return statements


OPERATIONS = [
    RawSQL(single_node=_drops(cluster=False), cluster=_drops(cluster=True)),
    CreateTable(SESSIONS_HOURLY),
    CreateTable(EVENTS_HOURLY),
    CreateTable(SESSIONS_DAILY),
    CreateTable(EVENTS_DAILY),
    RawSQL(single_node=_fill(cluster=False), cluster=_fill(cluster=True)),
]

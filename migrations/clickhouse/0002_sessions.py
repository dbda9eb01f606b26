"""The sessions table: one logical row per visit, kept up to date at ingest.

A ``VersionedCollapsingMergeTree(sign, version)``: when an event changes a session, ingest
writes the session's previous state again with ``sign = -1`` (a cancel row) and the new state
with ``sign = 1`` and the next ``version``. Merges drop each cancelled pair, so a session ends
as one row; before they do, every aggregate is still exact when weighted by ``sign``:

    visits        = sum(sign)
    pageviews     = sum(sign * pageviews)
    bounces       = sum(sign * is_bounce)
    time on site  = sum(sign * duration)
    entry pages   = GROUP BY entry_page HAVING sum(sign) > 0

(or read ``FROM sessions FINAL`` for the collapsed rows). A session's sort key never changes
between versions except when an out-of-order event moves its start to an earlier day; the
cancel row is an exact copy of the row it cancels, so they still collapse together.
"""

from datafast.db.clickhouse import CreateTable, Table

SESSIONS = Table(
    name="sessions",
    columns=[
        ("website_id", "UUID"),
        ("session_id", "String CODEC(ZSTD(1))"),
        ("visitor_id", "String CODEC(ZSTD(1))"),
        ("sign", "Int8"),
        ("version", "UInt32"),
        ("started_at", "DateTime64(3, 'UTC') CODEC(Delta(8), ZSTD(1))"),
        ("ended_at", "DateTime64(3, 'UTC') CODEC(Delta(8), ZSTD(1))"),
        ("duration", "UInt32"),
        ("pageviews", "UInt32"),
        ("events", "UInt32"),
        ("is_bounce", "UInt8"),
        ("hostname", "LowCardinality(String)"),
        ("entry_page", "String CODEC(ZSTD(1))"),
        ("exit_page", "String CODEC(ZSTD(1))"),
        ("referrer", "String CODEC(ZSTD(3))"),
        ("referrer_source", "LowCardinality(String)"),
        ("channel", "LowCardinality(String)"),
        ("utm_source", "LowCardinality(String)"),
        ("utm_medium", "LowCardinality(String)"),
        ("utm_campaign", "String CODEC(ZSTD(1))"),
        ("utm_term", "String CODEC(ZSTD(1))"),
        ("utm_content", "String CODEC(ZSTD(1))"),
        ("browser", "LowCardinality(String)"),
        ("os", "LowCardinality(String)"),
        ("device", "LowCardinality(String)"),
        ("country", "LowCardinality(String)"),
        ("region", "LowCardinality(String)"),
        ("city", "LowCardinality(String)"),
        ("goals", "UInt32"),
        ("revenue", "Int64"),
    ],
    engine="VersionedCollapsingMergeTree(sign, version)",
    partition_by="toYYYYMM(started_at)",
    order_by="(website_id, toDate(started_at), session_id)",
    settings={"index_granularity": 8192},
    single_node_settings={"non_replicated_deduplication_window": 10000},
    sharding_key="cityHash64(website_id)",
)

OPERATIONS = [CreateTable(SESSIONS)]

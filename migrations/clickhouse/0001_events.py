"""The events table: one row per pageview, goal, purchase or custom event.

Ordered for per-site time-range scans (website, day, visitor, time); partitioned by month.
Low-cardinality dimensions are LowCardinality; time columns use Delta codecs; the rest ZSTD.
Revenue is in minor units (cents) with its ISO currency; the raw IP is never stored.
"""

from datafast.db.clickhouse import CreateTable, Table

EVENTS = Table(
    name="events",
    columns=[
        ("website_id", "UUID"),
        ("event_id", "UUID"),
        ("event_type", "LowCardinality(String)"),
        ("event_name", "LowCardinality(String) DEFAULT ''"),
        ("timestamp", "DateTime64(3, 'UTC') CODEC(Delta(8), ZSTD(1))"),
        ("visitor_id", "String CODEC(ZSTD(1))"),
        ("session_id", "String CODEC(ZSTD(1))"),
        ("hostname", "LowCardinality(String)"),
        ("pathname", "String CODEC(ZSTD(1))"),
        ("page_url", "String CODEC(ZSTD(3))"),
        ("referrer", "String CODEC(ZSTD(3))"),
        ("referrer_source", "LowCardinality(String)"),
        ("channel", "LowCardinality(String)"),
        ("utm_source", "LowCardinality(String)"),
        ("utm_medium", "LowCardinality(String)"),
        ("utm_campaign", "String CODEC(ZSTD(1))"),
        ("utm_term", "String CODEC(ZSTD(1))"),
        ("utm_content", "String CODEC(ZSTD(1))"),
        ("browser", "LowCardinality(String)"),
        ("browser_version", "LowCardinality(String)"),
        ("os", "LowCardinality(String)"),
        ("os_version", "LowCardinality(String)"),
        ("device", "LowCardinality(String)"),
        ("country", "LowCardinality(String)"),
        ("region", "LowCardinality(String)"),
        ("city", "LowCardinality(String)"),
        ("goal_name", "LowCardinality(String)"),
        ("props", "Map(LowCardinality(String), String) CODEC(ZSTD(1))"),
        ("revenue", "Int64 DEFAULT 0"),
        ("currency", "LowCardinality(String)"),
    ],
    partition_by="toYYYYMM(timestamp)",
    order_by="(website_id, toDate(timestamp), visitor_id, timestamp)",
    settings={"index_granularity": 8192},
    # Lets a replayed insert with the same insert_deduplication_token write nothing.
    single_node_settings={"non_replicated_deduplication_window": 10000},
    sharding_key="cityHash64(website_id)",
)

OPERATIONS = [CreateTable(EVENTS)]

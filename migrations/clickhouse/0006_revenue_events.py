"""Tracker revenue events in a table of their own, kept by a materialized view.

Money metrics read every tracker event with a revenue value (a ``purchase``, a goal with a value)
in the range, and its ``props['transaction_id']`` for the double-count rule. In ``events`` those
few rows are spread over every granule of the range, so each money query decompressed a month
of ``props`` to read them (60 to 180 ms at 10M events). ``revenue_events`` holds just those rows,
with the transaction id as a column: the same conversions, read from a table of a few thousand
rows a month.

The view copies what ``events`` receives; a replayed insert that ``events`` deduplicates is
deduplicated in the copy too (see ``_DEDUPLICATED``, which also fixes the rollups). The
migration fills the table from the events already stored, then creates the view: run it while
no events are being written (``datafast migrate`` before starting the servers and workers), as 0005.
"""

from datafast.db.clickhouse import CreateTable, RawSQL, Table

REVENUE_EVENTS = Table(
    name="revenue_events",
    columns=[
        ("website_id", "UUID"),
        ("event_id", "UUID"),
        ("timestamp", "DateTime64(3, 'UTC') CODEC(Delta(8), ZSTD(1))"),
        ("visitor_id", "String CODEC(ZSTD(1))"),
        ("session_id", "String CODEC(ZSTD(1))"),
        ("revenue", "Int64"),
        ("currency", "LowCardinality(String)"),
        ("transaction_id", "String CODEC(ZSTD(1))"),
    ],
    partition_by="toYYYYMM(timestamp)",
    order_by="(website_id, timestamp)",
    settings={"index_granularity": 1024},
    single_node_settings={"non_replicated_deduplication_window": 10000},
    sharding_key="cityHash64(website_id)",
)

ROLLUPS = ("events_hourly", "events_daily", "sessions_hourly", "sessions_daily")
_DEDUPLICATED = [
    f"ALTER TABLE {{db}}.{table} MODIFY SETTING non_replicated_deduplication_window = 10000"
    for table in ROLLUPS
]
"""A replayed insert into ``events`` or ``sessions`` (same token) is dropped there, and its views
pass the drop on (``deduplicate_blocks_in_dependent_materialized_views``) only to tables that keep
a deduplication window: without one, a single node's rollups counted a replayed batch twice.
(Replicated tables on a cluster keep one by default.)"""

# DDL of our own: no value from outside reaches these statements.
_SELECT = (
    "SELECT website_id, event_id, timestamp, visitor_id, session_id, revenue, currency,"
    " props['transaction_id'] AS transaction_id FROM {source} WHERE revenue > 0"
)


def _fill(cluster: bool) -> list[str]:
    """Copy the stored revenue events, then let the view copy new ones (on a cluster each node's
    view reads its local ``events`` shard into its local ``revenue_events`` shard)."""
    on_cluster, local = ("{on_cluster}", "_local") if cluster else ("", "")
    sync = " SETTINGS insert_distributed_sync = 1" if cluster else ""
    return [
        f"TRUNCATE TABLE IF EXISTS {{db}}.revenue_events{local}{on_cluster}",
        "INSERT INTO {db}.revenue_events " + _SELECT.format(source="{db}.events") + sync,
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.revenue_events_mv{on_cluster}"
        f" TO {{db}}.revenue_events{local} AS " + _SELECT.format(source=f"{{db}}.events{local}"),
    ]


OPERATIONS = [
    RawSQL(single_node=_DEDUPLICATED, cluster=[]),
    CreateTable(REVENUE_EVENTS),
    RawSQL(single_node=_fill(cluster=False), cluster=_fill(cluster=True)),
]

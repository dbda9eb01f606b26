"""The page_scrolls table: how far down a page a visitor scrolled, one row per report.

The tracker's scroll extension (``data-track-scroll``) sends a ``scroll`` event with the deepest
point of a page reached (``depth``, % of its height) when the visitor leaves the page, and again
when they come back and go deeper: several rows of one visitor and page are normal, and reports
take each visitor's deepest (:meth:`datafast.domain.analytics.queries.AnalyticsQueries.scroll_depths`).
These events are not ``events`` rows: they are no pageview, goal or custom event, and they do
not extend a visit. Keyed by site and visitor like ``events``, so retention
(:data:`datafast.db.retention.RETAINED`), privacy export/erase (tables with ``visitor_id``) and
backups cover it.
"""

from datafast.db.clickhouse import CreateTable, Table

PAGE_SCROLLS = Table(
    name="page_scrolls",
    columns=[
        ("website_id", "UUID"),
        ("timestamp", "DateTime64(3, 'UTC') CODEC(Delta(8), ZSTD(1))"),
        ("visitor_id", "String CODEC(ZSTD(1))"),
        ("hostname", "LowCardinality(String)"),
        ("pathname", "String CODEC(ZSTD(1))"),
        ("depth", "UInt8"),
    ],
    partition_by="toYYYYMM(timestamp)",
    order_by="(website_id, toDate(timestamp), pathname, visitor_id)",
    # Lets a replayed insert with the same insert_deduplication_token write nothing.
    single_node_settings={"non_replicated_deduplication_window": 10000},
    sharding_key="cityHash64(website_id)",
)

OPERATIONS = [CreateTable(PAGE_SCROLLS)]

"""Credited visits kept with the money (see ``datafast.domain.analytics.credits``).

``credits``: per conversion (``key``: a payment key, or ``event:<id>`` for tracker revenue), model
and lookback, the credited visit (``session_id``, empty when none is in the window) and its
attributes. A ``ReplacingMergeTree(computed_at)``: a refresh writes a newer row; read ``FINAL``.
``visitor_id`` and ``anchor_at`` are the conversion's when it was computed: a report whose
conversions moved since (a late link) attributes at query time until the refresh lands.

The migration computes the credits of the conversions already stored (payments, then tracker
revenue events), with the refresh's own statement, for every site at once.
"""

from datafast.db.clickhouse import CreateTable, RawSQL, Table
from datafast.domain.analytics.credits import CARRIED, LOOKBACK, backfill_statement

_TYPES = {
    "hostname": "LowCardinality(String)",
    "referrer_source": "LowCardinality(String)",
    "channel": "LowCardinality(String)",
    "utm_source": "LowCardinality(String)",
    "utm_medium": "LowCardinality(String)",
    "browser": "LowCardinality(String)",
    "os": "LowCardinality(String)",
    "device": "LowCardinality(String)",
    "country": "LowCardinality(String)",
    "region": "LowCardinality(String)",
    "city": "LowCardinality(String)",
}

CREDITS = Table(
    name="credits",
    columns=[
        ("website_id", "UUID"),
        ("lookback", "UInt16"),
        ("model", "LowCardinality(String)"),
        ("key", "String"),
        ("visitor_id", "String CODEC(ZSTD(1))"),
        ("anchor_at", "DateTime64(3, 'UTC')"),
        ("session_id", "String CODEC(ZSTD(1))"),
        *((column, _TYPES.get(column, "String CODEC(ZSTD(1))")) for column in CARRIED),
        ("computed_at", "DateTime64(6, 'UTC')"),
    ],
    engine="ReplacingMergeTree(computed_at)",
    order_by="(website_id, lookback, model, key)",
    settings={"index_granularity": 1024},
    sharding_key="cityHash64(website_id)",
)

OPERATIONS = [
    CreateTable(CREDITS),
    RawSQL(single_node=[backfill_statement(LOOKBACK)], cluster=[backfill_statement(LOOKBACK)]),
]

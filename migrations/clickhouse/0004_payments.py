"""Payments from provider webhooks and the Payments API, and the daily exchange-rate table.

``payments``: one row per payment or refund (refunds negative), in minor units with the
original ISO currency, plus ``amount_site`` in the site's currency at the payment date.
A ``ReplacingMergeTree(version)`` keyed by ``(website_id, payment_key)``: a redelivered
webhook or a double-count trap (two events for one payment) maps to the same key, so it
never counts twice; read it ``FINAL``. A later version of a row only ever adds a visitor link.

``anchor_at`` is when the attribution window ends: the payment's own time, its
subscription's first payment for a renewal, the original payment for a refund.

``exchange_rates``: ``1 base = rate quote`` on a day, loaded with ``datafast rates load``.
"""

from datafast.db.clickhouse import CreateTable, Table

PAYMENTS = Table(
    name="payments",
    columns=[
        ("website_id", "UUID"),
        ("payment_key", "String"),
        ("version", "UInt64"),
        ("provider", "LowCardinality(String)"),
        ("kind", "LowCardinality(String)"),
        ("is_renewal", "UInt8"),
        ("transaction_id", "String"),
        ("refs", "Array(String)"),
        ("subscription_id", "String"),
        ("customer_id", "String"),
        ("timestamp", "DateTime64(3, 'UTC')"),
        ("anchor_at", "DateTime64(3, 'UTC')"),
        ("amount", "Int64"),
        ("currency", "LowCardinality(String)"),
        ("amount_site", "Int64"),
        ("site_currency", "LowCardinality(String)"),
        ("rate_source", "LowCardinality(String)"),
        ("visitor_id", "String"),
        ("session_id", "String"),
        ("link", "LowCardinality(String)"),
        ("email_hash", "String"),
        ("created_at", "DateTime64(3, 'UTC') DEFAULT now64(3)"),
    ],
    engine="ReplacingMergeTree(version)",
    order_by="(website_id, payment_key)",
    single_node_settings={"non_replicated_deduplication_window": 10000},
    sharding_key="cityHash64(website_id)",
)

EXCHANGE_RATES = Table(
    name="exchange_rates",
    columns=[
        ("day", "Date"),
        ("base", "LowCardinality(String)"),
        ("quote", "LowCardinality(String)"),
        ("rate", "Float64"),
        ("source", "LowCardinality(String) DEFAULT ''"),
    ],
    engine="ReplacingMergeTree()",
    order_by="(base, quote, day)",
    sharding_key=None,
)

OPERATIONS = [CreateTable(PAYMENTS), CreateTable(EXCHANGE_RATES)]

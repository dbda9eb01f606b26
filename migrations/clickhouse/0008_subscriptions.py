"""Subscriptions from the providers' lifecycle webhooks, as a timeline of states.

``subscription_states``: one row per provider event about a subscription — its state as that
event describes it (status, plan, amount per billing interval and that amount normalised to a
month, trial and lifecycle dates) at the provider's event time ``state_at``. A
``ReplacingMergeTree(version)`` keyed by ``(website_id, provider, subscription_id, state_at,
event_id)``: a redelivered event lands on its own key again (no double rows), and events that
arrive out of order still sort by the provider's time, so the timeline converges to the same
answer whatever the delivery order. The state of a subscription at an instant is its last row
at or before it; MRR movements compare those states month by month
(``datafast.domain.analytics.subscriptions``).

Kept in ClickHouse beside ``payments`` (not in the config database): reports join a
subscription to its first payment's visitor and that visitor's first session, and both tables
scale and shard the same way (by site).
"""

from datafast.db.clickhouse import CreateTable, Table

SUBSCRIPTION_STATES = Table(
    name="subscription_states",
    columns=[
        ("website_id", "UUID"),
        ("provider", "LowCardinality(String)"),
        ("subscription_id", "String"),
        ("state_at", "DateTime64(3, 'UTC')"),
        ("event_id", "String"),
        ("version", "UInt64"),
        ("status", "LowCardinality(String)"),
        ("plan", "String"),
        ("customer_id", "String"),
        ("currency", "LowCardinality(String)"),
        ("amount", "Int64"),
        ("interval", "LowCardinality(String)"),
        ("interval_count", "UInt16"),
        ("mrr", "Int64"),
        ("mrr_site", "Int64"),
        ("site_currency", "LowCardinality(String)"),
        ("started_at", "Nullable(DateTime64(3, 'UTC'))"),
        ("trial_start", "Nullable(DateTime64(3, 'UTC'))"),
        ("trial_end", "Nullable(DateTime64(3, 'UTC'))"),
        ("canceled_at", "Nullable(DateTime64(3, 'UTC'))"),
        ("ended_at", "Nullable(DateTime64(3, 'UTC'))"),
        ("visitor_id", "String"),
        ("session_id", "String"),
        ("created_at", "DateTime64(3, 'UTC') DEFAULT now64(3)"),
    ],
    engine="ReplacingMergeTree(version)",
    order_by="(website_id, provider, subscription_id, state_at, event_id)",
    single_node_settings={"non_replicated_deduplication_window": 10000},
    sharding_key="cityHash64(website_id)",
)

OPERATIONS = [CreateTable(SUBSCRIPTION_STATES)]

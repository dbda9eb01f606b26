"""Visitor states by site-local day: one HyperLogLog state per local day and value.

A dashboard's range is site-local days, which do not line up with UTC days unless the site is in
UTC: before this, a 30-day range read the whole UTC days from the daily rollups and the hours at
both ends from the hourly ones (46 hourly states per value), and a daily series in the site's
timezone merged all 720 hourly states of each value. Merging states is what a rollup query
spends its time on (about 0.1 ms a state).

``sessions_local_daily`` / ``events_local_daily`` keep only the visitor states (visitors,
converted, sessions) per site, **UTC offset**, local day (``toDate(hour + offset)``), dimension
and value. The summed columns stay in the hourly and daily rollups (summing is cheap), so a local
day row never has to be exact on its own: a state is a set union, and merging the same visitor
hashes twice gives the same state. That is what makes these tables easy to keep:

- ``local_day_offsets`` lists, per site, the whole-hour UTC offsets its timezone uses. Views on
  the hourly rollups' inserts write a local day row for each listed offset of the inserted site.
- The ``local_days`` job (every minute) lists a site's offsets and fills each new one from the
  hourly rollups; rows the views write meanwhile are merged twice, harmlessly. A listing is
  marked ``ready`` once filled, and only then do reports read it
  (``datafast.domain.analytics.local_days``).
- A timezone change needs nothing more: the next run lists and fills the new timezone's offsets.

Keyed by offset rather than timezone name because ClickHouse takes a timezone name only as a
constant; a day whose offset changes (a DST change) is read from the hourly rollups.
"""

from datafast.db.clickhouse import CreateTable, RawSQL, Table
from datafast.domain.analytics.local_days import STATES, local_day_select

_STATE = "AggregateFunction(uniqCombined64(15), UInt64)"

LOCAL_DAY_OFFSETS = Table(
    name="local_day_offsets",
    columns=[
        ("website_id", "UUID"),
        ("utc_offset", "Int32"),
        ("ready", "UInt8"),
        ("at", "DateTime64(6, 'UTC')"),
    ],
    engine="ReplacingMergeTree(at)",
    order_by="(website_id, utc_offset)",
    sharding_key="cityHash64(website_id)",
)


def _local_daily(rollup: str) -> Table:
    return Table(
        name=f"{rollup}_local_daily",
        columns=[
            ("website_id", "UUID"),
            ("utc_offset", "Int32"),
            ("day", "Date"),
            ("dimension", "LowCardinality(String)"),
            ("value", "String"),
            *((state, _STATE) for state in STATES[rollup]),
        ],
        engine="AggregatingMergeTree()",
        partition_by="toYYYYMM(day)",
        order_by="(website_id, dimension, utc_offset, day, value)",
        settings={"index_granularity": 256},
        sharding_key="cityHash64(website_id)",
    )


def _views(cluster: bool) -> list[str]:
    on_cluster, local = ("{on_cluster}", "_local") if cluster else ("", "")
    offsets = f"(SELECT DISTINCT website_id, utc_offset FROM {{db}}.local_day_offsets{local})"  # noqa: S608
    return [
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{rollup}_local_daily_mv{on_cluster}"
        f" TO {{db}}.{rollup}_local_daily{local} AS "
        + local_day_select(rollup, f"{{db}}.{rollup}_hourly{local}", offsets)
        for rollup in STATES
    ]


OPERATIONS = [
    CreateTable(LOCAL_DAY_OFFSETS),
    *(CreateTable(_local_daily(rollup)) for rollup in STATES),
    RawSQL(single_node=_views(cluster=False), cluster=_views(cluster=True)),
]

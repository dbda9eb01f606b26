"""Imported history: daily aggregates brought from another analytics tool (Plausible, Umami, GA4).

``imported_daily`` holds, per site, import, site-local day, dimension and value, the summed
traffic of that day: ``visitors``, ``visits``, ``pageviews``, ``bounces`` and
``visit_duration`` (seconds, summed over the visits). The dimension ``''`` (value ``''``) is the
day's totals; the others are ``source``, ``page``, ``entry_page``, ``exit_page``, ``country``,
``device``, ``browser`` and ``os`` — the dashboard's names (see
:mod:`datafast.domain.imports`). Visitors are each tool's daily distinct count, so a range sums
daily visitors, as Plausible does with its own imported tables.

No visitor id or email hash is stored, so privacy erase and retention have nothing to do here;
an import's rows are deleted by ``import_id`` when the import is deleted or run again.
"""

from datafast.db.clickhouse import CreateTable, Table

IMPORTED_DAILY = Table(
    name="imported_daily",
    columns=[
        ("website_id", "UUID"),
        ("import_id", "UUID"),
        ("day", "Date"),
        ("dimension", "LowCardinality(String)"),
        ("value", "String"),
        ("visitors", "UInt64"),
        ("visits", "UInt64"),
        ("pageviews", "UInt64"),
        ("bounces", "UInt64"),
        ("visit_duration", "UInt64"),
    ],
    partition_by="toYYYYMM(day)",
    order_by="(website_id, dimension, day, value)",
    sharding_key="cityHash64(website_id)",
)

OPERATIONS = [CreateTable(IMPORTED_DAILY)]

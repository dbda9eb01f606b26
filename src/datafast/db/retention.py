"""Data retention: ClickHouse TTLs that delete traffic older than ``DATA_RETENTION_DAYS``.

The raw events, the sessions and the rollups the dashboard reads expire together, each by its
own time column, so every report over the retained days still adds up; the visits credited to a
payment (``credits``) follow them, by the payment's time. Payments (and exchange rates) are
kept: they are the founder's books, not visitor traffic. History imported from another
tool (``imported_daily``) is not retained either: daily aggregates with no visitor id, which the
site's admin removes by deleting the import.

Applied by ``datafast migrate`` (and at start in embedded mode): a table's TTL is changed only
when it differs from the setting, since changing it rewrites the table's parts once (ClickHouse
materializes the new TTL) — old rows go then, and from then on in background merges.

A TTL is a table's, not a site's: hosted mode's shorter per-plan retention
(:mod:`datafast.domain.billing.retention`) deletes the older rows of those sites with
:func:`expire_sites` (``ALTER TABLE … DELETE``), from the same tables by the same columns.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from datafast.lib.eventstore import EventStore
from datafast.log import get_logger

__all__ = ("RETAINED", "apply_retention", "expire_sites")

log = get_logger(__name__)

RETAINED: dict[str, str] = {
    "events": "toDateTime(timestamp)",
    "revenue_events": "toDateTime(timestamp)",
    "sessions": "toDateTime(started_at)",
    "sessions_hourly": "hour",
    "events_hourly": "hour",
    "sessions_daily": "day",
    "events_daily": "day",
    "sessions_local_daily": "day",
    "events_local_daily": "day",
    "page_scrolls": "toDateTime(timestamp)",
    "credits": "toDateTime(anchor_at)",
}
"""Each table that expires, and the time its rows count from."""


def _ttl(expression: str, days: int) -> str:
    return f"{expression} + toIntervalDay({int(days)})"


async def apply_retention(store: EventStore, days: int) -> list[str]:
    """Give every :data:`RETAINED` table a TTL of ``days`` (0: none); returns the tables changed."""
    on_cluster = f" ON CLUSTER {store.cluster}" if store.cluster else ""
    suffix = "_local" if store.cluster else ""  # the tables the Distributed ones read
    changed: list[str] = []
    for name, expression in RETAINED.items():
        table = name + suffix
        result = await store.query(
            "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {name:String}",
            parameters={"db": store.database, "name": table},
        )
        if not result.result_rows:
            continue  # not migrated yet
        current = str(result.result_rows[0][0])
        has_ttl = " TTL " in current
        if days:
            wanted = _ttl(expression, days)
            if has_ttl and _normalized(wanted) in _normalized(current):
                continue
            await store.command(f"ALTER TABLE {store.database}.{table}{on_cluster} MODIFY TTL {wanted}")
        elif has_ttl:
            await store.command(f"ALTER TABLE {store.database}.{table}{on_cluster} REMOVE TTL")
        else:
            continue
        changed.append(name)
    if changed:
        log.info("data retention applied", days=days or None, tables=changed)
    return changed


async def expire_sites(store: EventStore, cutoffs: Mapping[str, datetime]) -> list[str]:
    """Delete each site's traffic older than its cutoff (``{website_id: before}``) from every
    :data:`RETAINED` table, one mutation per table; returns the tables it ran on (each waits for
    its rewrite: ``mutations_sync``)."""
    if not cutoffs:
        return []
    on_cluster = f" ON CLUSTER {store.cluster}" if store.cluster else ""
    suffix = "_local" if store.cluster else ""
    sites, befores = list(cutoffs), [cutoffs[site] for site in cutoffs]
    done: list[str] = []
    for name, expression in RETAINED.items():
        exists = await store.query(
            "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {name:String}",
            parameters={"db": store.database, "name": name + suffix},
        )
        if not exists.result_rows[0][0]:
            continue
        await store.command(
            f"ALTER TABLE {store.database}.{name}{suffix}{on_cluster} DELETE"
            " WHERE website_id IN {sites:Array(UUID)}"
            f" AND {expression}"
            " < {befores:Array(DateTime('UTC'))}[indexOf({sites:Array(UUID)}, website_id)]",
            parameters={"sites": sites, "befores": befores},
            settings={"mutations_sync": 2},
        )
        done.append(name)
    return done


def _normalized(sql: str) -> str:
    return "".join(sql.split()).lower()

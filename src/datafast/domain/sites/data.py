"""A site's analytics data in ClickHouse: deleting all of it, exporting its events as CSV.

The export is written with ``defusedcsv``: a cell that a spreadsheet would run as a formula
(text starting with ``=``, ``+``, ``-``, ``@``, ``|`` or ``%``, such as a referrer or goal name
sent to ``/track`` by anyone) gets a leading ``'`` so it is shown as text, never evaluated.
Its ``revenue`` column is what the tracker reported (unverified); ``counted_revenue`` is what the
event adds to the money metrics under the site's policy (:mod:`datafast.domain.revenue.trust`).

Tables are discovered from ``system.columns`` (every MergeTree table of our database with a
``website_id`` column), so tables added later (sessions, payments, …) are covered. Values are
bound server-side; table names come from ClickHouse itself and are quoted.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from defusedcsv import csv  # type: ignore[import-untyped]  # no type hints shipped
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Membership, Role, User, Website
from datafast.domain.analytics.conversions import (
    COUNTED_REVENUE,
    DEFAULT_CLIENT_REVENUE,
    ClientRevenue,
    client_parameters,
)
from datafast.lib.eventstore import EventStore

__all__ = (
    "EXPORT_CHUNK_ROWS",
    "count_events",
    "delete_account",
    "delete_site_data",
    "delete_website",
    "export_events_csv",
    "site_tables",
)

EXPORT_CHUNK_ROWS = 20_000


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("\\", "\\\\").replace("`", "\\`") + "`"


async def site_tables(store: EventStore) -> list[str]:
    result = await store.query(
        "SELECT DISTINCT c.table FROM system.columns AS c"
        " INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table"
        " WHERE c.database = {db:String} AND c.name = 'website_id' AND t.engine LIKE '%MergeTree'"
        " ORDER BY c.table",
        parameters={"db": store.database},
    )
    return [str(row[0]) for row in result.result_rows]


async def delete_site_data(store: EventStore, website_id: uuid.UUID) -> list[str]:
    """Start the deletion of every row of the site (a ClickHouse mutation); returns the tables."""
    tables = await site_tables(store)
    on_cluster = f" ON CLUSTER {_quote(store.cluster)}" if store.cluster else ""
    for table in tables:
        await store.command(
            f"ALTER TABLE {_quote(store.database)}.{_quote(table)}{on_cluster}"
            " DELETE WHERE website_id = {site:UUID}",
            parameters={"site": str(website_id)},
        )
    return tables


async def delete_website(db: AsyncSession, store: EventStore, website: Website) -> None:
    """The site's events first: a failure there leaves the site in place to try again."""
    await delete_site_data(store, website.id)
    await db.delete(website)
    await db.flush()


async def delete_account(db: AsyncSession, store: EventStore, user: User) -> list[uuid.UUID]:
    """Delete the user, and the sites they own with all their data; returns those sites' ids."""
    owned = (
        await db.scalars(
            select(Website)
            .join(Membership, Membership.website_id == Website.id)
            .where(Membership.user_id == user.id, Membership.role == Role.OWNER)
        )
    ).all()
    for website in owned:
        await delete_website(db, store, website)
    await db.delete(user)
    await db.flush()
    return [w.id for w in owned]


async def count_events(store: EventStore, website_id: uuid.UUID) -> int:
    result = await store.query(
        "SELECT count() FROM events WHERE website_id = {site:UUID}", parameters={"site": str(website_id)}
    )
    return int(result.result_rows[0][0])


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


async def export_events_csv(
    store: EventStore,
    website_id: uuid.UUID,
    chunk_rows: int = EXPORT_CHUNK_ROWS,
    *,
    client: ClientRevenue = DEFAULT_CLIENT_REVENUE,
    currency: str = "",
) -> AsyncIterator[bytes]:
    """The site's events as CSV (a header, then rows oldest first), fetched ``chunk_rows`` at a time,
    each with ``counted_revenue``: its revenue as the money metrics count it (``client`` policy, in
    the site's ``currency``).

    Keyset pagination on (timestamp, event_id) keeps each query cheap however far in it is.
    """
    after: tuple[Any, str] | None = None
    header_written = False
    while True:
        where = "website_id = {site:UUID}"
        parameters: dict[str, Any] = {
            "site": str(website_id),
            "limit": chunk_rows,
            **client_parameters(client, str(website_id), currency),
        }
        if after is not None:
            where += " AND (timestamp, event_id) > ({ts:DateTime64(3, 'UTC')}, {eid:UUID})"
            parameters["ts"], parameters["eid"] = after
        result = await store.query(
            # ``where`` is one of two constant strings, COUNTED_REVENUE a constant; every value is bound.
            f"SELECT *, {COUNTED_REVENUE} AS counted_revenue FROM events WHERE {where}"  # noqa: S608
            " ORDER BY timestamp, event_id LIMIT {limit:UInt32}",
            parameters=parameters,
        )
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if not header_written:
            writer.writerow(result.column_names)
            header_written = True
        rows = result.result_rows
        writer.writerows([_cell(v) for v in row] for row in rows)
        yield buffer.getvalue().encode()
        if len(rows) < chunk_rows:
            return
        names = list(result.column_names)
        last = rows[-1]
        after = (last[names.index("timestamp")], str(last[names.index("event_id")]))

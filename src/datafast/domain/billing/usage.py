"""Events an account's sites sent in a billing period, read from the hourly rollups (not the raw
events): the ``''`` dimension of ``events_hourly`` holds one row per site and hour with its count."""

from __future__ import annotations

import uuid
from datetime import datetime

from datafast.lib.eventstore import EventStore

__all__ = ("events_in_period",)

_EVENTS = (
    "SELECT sum(events) FROM events_hourly"
    " WHERE website_id IN {sites:Array(UUID)} AND dimension = ''"
    " AND hour >= toStartOfHour({start:DateTime('UTC')}) AND hour < {end:DateTime('UTC')}"
)


async def events_in_period(
    event_store: EventStore, site_ids: list[uuid.UUID], start: datetime, end: datetime
) -> int:
    """Events of ``site_ids`` in the hours from the one holding ``start`` up to ``end``."""
    if not site_ids:
        return 0
    result = await event_store.query(
        _EVENTS, {"sites": [str(s) for s in site_ids], "start": start, "end": end}, limited=False
    )
    value = result.result_rows[0][0] if result.result_rows else 0
    return int(value or 0)

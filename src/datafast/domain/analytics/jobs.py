"""The ``local_days`` job (every 5 minutes): every site's local-day visitor states ready to read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from datafast.db.models import Website
from datafast.domain.analytics.local_days import LocalDays, zone_offsets
from datafast.lib.adapters import Adapters

__all__ = ("LOCAL_DAYS", "LOCAL_DAYS_CRON", "LOCAL_DAYS_TIMEOUT", "local_days")

LOCAL_DAYS = "local_days"
LOCAL_DAYS_CRON = "*/5 * * * *"
LOCAL_DAYS_TIMEOUT = 600
"""Seconds one run may take (a first run fills every site's local days from its hourly rollups)."""


async def local_days(
    ctx: dict[str, Any], *, website_id: str | None = None, timezone: str | None = None, **_: Any
) -> dict[str, list[int]]:
    """List and fill the UTC offsets each site's timezone uses (see ``analytics.local_days``), or
    one site's (queued when a site is added or its timezone changes); returns the offsets filled,
    by site (nothing once every site is ready)."""
    adapters: Adapters = ctx["adapters"]
    if website_id is not None and timezone is not None:
        sites = [(website_id, timezone)]
    else:
        engine: AsyncEngine = ctx["engine"]
        async with AsyncSession(engine) as db:
            rows = (await db.execute(select(Website.id, Website.timezone))).all()
        sites = [(str(site), zone) for site, zone in rows]
    keeper = LocalDays(adapters.event_store)
    ready = await keeper.all_ready()  # one query: most sites need nothing
    now = datetime.now(UTC)
    lacking = [
        (site, zone) for site, zone in sites if not set(zone_offsets(zone, now)) <= ready.get(site, set())
    ]
    return await keeper.prepare_many(lacking, now) if lacking else {}

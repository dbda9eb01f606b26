"""The ``local_days`` job (every 5 minutes): every site's local-day visitor states ready to read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from datafast.db.models import Website
from datafast.domain.analytics.local_days import LocalDays
from datafast.lib.adapters import Adapters

__all__ = ("LOCAL_DAYS", "LOCAL_DAYS_CRON", "local_days")

LOCAL_DAYS = "local_days"
LOCAL_DAYS_CRON = "*/5 * * * *"


async def local_days(ctx: dict[str, Any], **_: Any) -> dict[str, list[int]]:
    """List and fill the UTC offsets each site's timezone uses (see ``analytics.local_days``);
    returns the offsets filled, by site (nothing once every site is ready)."""
    adapters: Adapters = ctx["adapters"]
    engine: AsyncEngine = ctx["engine"]
    async with AsyncSession(engine) as db:
        sites = (await db.execute(select(Website.id, Website.timezone))).all()
    keeper = LocalDays(adapters.event_store)
    filled = {}
    for website_id, timezone in sites:
        offsets = await keeper.prepare(str(website_id), timezone)
        if offsets:
            filled[str(website_id)] = offsets
    return filled

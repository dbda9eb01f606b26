"""The ``import`` job: one uploaded export parsed into ``imported_daily`` (see :mod:`.service`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from datafast.domain.analytics.cache import ResultCache
from datafast.domain.imports.service import run_import
from datafast.lib.adapters import Adapters

__all__ = ("IMPORT_TIMEOUT", "RUN_IMPORT", "import_job")

RUN_IMPORT = "import"
IMPORT_TIMEOUT = 3600
"""Seconds a worker gives one import (SAQ's default, 10 s, is for small jobs); passed when queued."""


async def import_job(ctx: dict[str, Any], *, import_id: str, **_: Any) -> dict[str, Any]:
    """Run one import; the site's cached Stats API results are dropped once its rows are in."""
    adapters: Adapters = ctx["adapters"]
    engine: AsyncEngine = ctx["engine"]
    row = await run_import(engine, adapters.event_store, uuid.UUID(import_id))
    if row is None:
        return {"import_id": import_id, "status": "skipped or failed"}
    await ResultCache(adapters.cache, adapters.settings.stats_cache_ttl).invalidate([str(row.website_id)])
    return {"import_id": import_id, "status": row.status, "rows": row.rows}

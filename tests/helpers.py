"""Test helpers shared by several test modules."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from datafast.lib.eventstore import EventStore

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


async def wait_for_rows(
    store: EventStore, website_id: uuid.UUID | str, expected: int, timeout: float = 20
) -> list[dict[str, Any]]:
    """Poll ClickHouse until ``expected`` rows of the site are there (the writer flushes on a timer)."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = await store.query(
            "SELECT * FROM events WHERE website_id = {site:UUID} ORDER BY timestamp",
            parameters={"site": str(website_id)},
        )
        rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
        if len(rows) >= expected:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {expected} rows for {website_id}, found {len(rows)} after {timeout}s")

"""Test helpers shared by several test modules."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from datafast.domain.ingest.rows import EventRow, encode_row
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


def event_record(site: str, n: int, at: float = 1_764_147_600.5) -> bytes:
    """A plain stored pageview (spool record) of visitor ``v<n>``, for spool and writer tests."""
    return encode_row(
        EventRow(
            website_id=site,
            event_id=str(uuid.uuid4()),
            event_type="pageview",
            event_name="",
            timestamp=at + n,
            visitor_id=f"v{n}",
            session_id=f"s{n}",
            hostname="a.example",
            pathname=f"/p{n}",
            page_url=f"https://a.example/p{n}",
            referrer="",
            referrer_source="",
            channel="direct",
            utm_source="",
            utm_medium="",
            utm_campaign="",
            utm_term="",
            utm_content="",
            browser="Firefox",
            browser_version="133.0",
            os="Linux",
            os_version="",
            device="desktop",
            country="FR",
            region="",
            city="",
            goal_name="",
            props={},
            revenue=0,
            currency="",
        )
    )


def metric(text: str, name: str, **labels: str) -> float | None:
    """One sample's value in a /metrics page (Prometheus text format), or None when absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None

"""Every stored event is published on its site's realtime channel (what the dashboard's SSE reads)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec

from tests.integration.ingest.conftest import Pipeline


async def test_accepted_events_reach_the_site_channel(pipeline: Pipeline) -> None:
    async with pipeline.adapters.pubsub.subscribe(f"site:{pipeline.site_id}") as messages:
        await pipeline.visit(datetime.now(UTC), "/live", event_id="live-1")
        await pipeline.visit(datetime.now(UTC), "/live", event_id="live-1")  # a retry: not published again
        await pipeline.visit(datetime.now(UTC), "/next", event_id="live-2")
        # Published once processed and stored: one message per site and batch.
        await pipeline.writer.flush()
        batch = msgspec.json.decode(await asyncio.wait_for(anext(messages), 5))

    assert [e["pathname"] for e in batch] == ["/live", "/next"]
    assert batch[0]["type"] == "pageview"
    assert batch[0]["visitor_id"]

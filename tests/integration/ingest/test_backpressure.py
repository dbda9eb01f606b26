"""A stalled inserter: capture answers 503 + Retry-After at its bound, and loses nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from saq import Worker
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Website
from datafast.domain.accounts.services import UserService
from datafast.domain.sites.services import WebsiteService
from datafast.lib.adapters import Adapters
from tests.helpers import CHROME_MAC


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "INGEST_FLUSH_INTERVAL": "0.05", "INGEST_BACKLOG_MB": "1"}


@pytest.fixture
async def site(db_session: AsyncSession) -> Website:
    owner = await UserService(session=db_session).create_user(
        f"b{uuid.uuid4().hex[:6]}@example.com", "password1"
    )
    website = await WebsiteService(session=db_session).create_site(owner, f"{uuid.uuid4().hex[:8]}.example")
    await db_session.commit()
    return website


async def _stored(adapters: Adapters, site: Website) -> dict[str, int]:
    result = await adapters.event_store.query(
        "SELECT event_id, count() FROM events WHERE website_id = {s:UUID} GROUP BY event_id",
        parameters={"s": str(site.id)},
    )
    return {str(row[0]).replace("-", ""): int(row[1]) for row in result.result_rows}


@pytest.mark.parametrize(
    "mode", ["embedded", pytest.param("scaled", marks=pytest.mark.scaled)], indirect=True
)
async def test_a_stalled_inserter_fills_the_log_to_its_bound_then_everything_acknowledged_is_stored_once(
    app: Litestar, adapters: Adapters, site: Website, ingest_worker: Worker[Any] | None
) -> None:
    """Embedded: the spool fills; scaled: the Valkey streams fill while the worker's drain jobs fail
    and SAQ retries them."""
    # ClickHouse stops taking events: the table the writer inserts into is gone for a while.
    await adapters.event_store.command("RENAME TABLE events TO events_stalled")
    acknowledged: list[str] = []
    refused = None
    try:
        async with AsyncTestClient(app) as client:
            for n in range(2000):
                batch = [
                    {
                        "website_id": str(site.id),
                        "page_url": f"https://{site.domain}/p{n}/{i}?{'x' * 200}",
                        "event_id": f"{n}-{i}",
                    }
                    for i in range(100)
                ]
                response = await client.post("/track", json=batch, headers={"user-agent": CHROME_MAC})
                if response.status_code == 503:
                    refused = response
                    break
                assert response.status_code == 202, response.text
                acknowledged += [evt.removeprefix("evt_") for evt in response.json()["ids"]]
            assert refused is not None, "the log never reached its bound"
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert int(refused.headers["retry-after"]) > 0
            assert "waiting for" in refused.json()["detail"]
            assert len(acknowledged) >= 1000
            health = await client.get("/healthz")
            assert health.status_code == 200  # the rest of the app is fine

            # ClickHouse is back: everything acknowledged goes in, once.
            await adapters.event_store.command("RENAME TABLE events_stalled TO events")
            deadline = time.monotonic() + 60
            while len(stored := await _stored(adapters, site)) < len(acknowledged):
                assert time.monotonic() < deadline, f"{len(stored)} of {len(acknowledged)} stored"
                await asyncio.sleep(0.2)
            # The next event is taken again (the bound is re-measured at most once a second).
            for _ in range(50):
                accepted = await client.post(
                    "/track",
                    json={"website_id": str(site.id), "page_url": f"https://{site.domain}/after"},
                    headers={"user-agent": CHROME_MAC},
                )
                if accepted.status_code != 503:
                    break
                await asyncio.sleep(0.1)
            assert accepted.status_code == 202, accepted.text
    finally:
        tables = await adapters.event_store.query("SHOW TABLES")
        if "events_stalled" in {row[0] for row in tables.result_rows}:
            await adapters.event_store.command("RENAME TABLE events_stalled TO events")

    assert sorted(stored) == sorted(acknowledged)
    assert set(stored.values()) == {1}

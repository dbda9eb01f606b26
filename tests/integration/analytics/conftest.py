"""Fixtures for the analytics tests: one synthetic dataset loaded once into chDB, and the service."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from datafast.db.migrate import migrate_clickhouse
from datafast.domain.analytics.queries import AnalyticsQueries
from datafast.domain.analytics.service import SiteContext, StatsService
from datafast.lib.eventstore import ChdbEventStore, EventStore
from tests.integration.analytics.traffic import (
    EVENT_COLUMNS,
    SESSION_COLUMNS,
    Truth,
    Visit,
    event_rows,
    generate,
    session_rows,
)

DATABASE = "datafast_analytics"
TIMEZONE = "Europe/Paris"
NOW = datetime(2026, 10, 27, 5, 0, tzinfo=UTC)
"""The tests' clock: just after the last generated visit."""


@dataclass
class Dataset:
    site: SiteContext
    other_site: str
    visits: list[Visit]
    truth: Truth


async def _load(path: Path, site: str, other: str, visits: list[Visit], noise: list[Visit]) -> None:
    store = ChdbEventStore(str(path), DATABASE)
    try:
        await store.ensure_database()
        await migrate_clickhouse(store)
        # Keep every cancel/state pair apart, as after many ingest batches and before any merge:
        # one insert per step (an insert collapses the pairs within itself) and no merges, ever
        # (SYSTEM STOP MERGES would not outlive this chDB session).
        await store.command(
            f"ALTER TABLE {DATABASE}.sessions MODIFY SETTING"
            " max_bytes_to_merge_at_max_space_in_pool = 1, max_bytes_to_merge_at_min_space_in_pool = 1"
        )
        for owner, batch in ((site, visits), (other, noise)):
            await store.insert("events", event_rows(owner, batch), EVENT_COLUMNS)
            rows = session_rows(owner, batch)
            # Step n writes the cancel row of version n - 1 and the state of version n.
            steps: dict[int, list[list[object]]] = {}
            for row in rows:
                steps.setdefault(row[4] + (row[3] == -1), []).append(row)
            for step in sorted(steps):
                await store.insert("sessions", steps[step], SESSION_COLUMNS)
        parts = await store.command(
            f"SELECT count() FROM system.parts WHERE database = '{DATABASE}'"
            " AND table = 'sessions' AND active"
        )
        assert int(parts) > 1
    finally:
        await store.close()


@pytest.fixture(scope="session")
def dataset(chdb_path: Path) -> Dataset:
    """Visits around the autumn DST change (Paris, 25 Oct 2026) and the spring one (29 Mar 2026),
    plus another site's traffic at the same times that must never leak into the results."""
    site, other = str(uuid.uuid4()), str(uuid.uuid4())
    visits = generate(1, datetime(2026, 10, 23, 18, tzinfo=UTC), datetime(2026, 10, 27, 4, tzinfo=UTC), 160)
    visits += generate(2, datetime(2026, 3, 27, 20, tzinfo=UTC), datetime(2026, 3, 30, 3, tzinfo=UTC), 80)
    noise = generate(3, datetime(2026, 10, 23, 18, tzinfo=UTC), datetime(2026, 10, 27, 4, tzinfo=UTC), 40)
    asyncio.run(_load(chdb_path, site, other, visits, noise))
    return Dataset(SiteContext(site, TIMEZONE, "EUR"), other, visits, Truth(visits, TIMEZONE))


@pytest.fixture
async def store(chdb_path: Path, dataset: Dataset) -> AsyncIterator[EventStore]:
    store = ChdbEventStore(str(chdb_path), DATABASE)
    yield store
    await store.close()


@pytest.fixture
def stats(store: EventStore) -> StatsService:
    return StatsService(AnalyticsQueries(store), clock=lambda: NOW)

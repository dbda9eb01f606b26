"""``revenue_events``: the materialized copy of tracker revenue events that money metrics read,
and the rollups: what a materialized view copies from a replayed insert.

It must hold exactly the events with revenue, each once — also when ingest replays an insert
(the same deduplication token) — with the transaction id the double-count rule compares."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from datafast.db.migrate import migrate_clickhouse
from datafast.jobs import JOBS
from datafast.lib.adapters import Adapters, create_adapters
from tests.conftest import SettingsFactory
from tests.helpers import both_modes
from tests.integration.analytics.traffic import EVENT_COLUMNS, event_rows, generate


@pytest.fixture
async def own(make_settings: SettingsFactory) -> AsyncIterator[Adapters]:
    settings = make_settings(CLICKHOUSE_DATABASE=f"revenue_events_{uuid.uuid4().hex[:8]}")
    adapters = await create_adapters(settings, JOBS)
    await migrate_clickhouse(adapters.event_store)
    yield adapters
    await adapters.event_store.command(f"DROP DATABASE IF EXISTS {adapters.event_store.database}")
    await adapters.close()


@both_modes
async def test_revenue_events_hold_each_revenue_event_once_even_when_an_insert_is_replayed(
    own: Adapters,
) -> None:
    store = own.event_store
    site = str(uuid.uuid4())
    now = datetime.now(UTC).replace(microsecond=0)
    visits = generate(7, now - timedelta(days=3), now - timedelta(days=1), 60)
    rows = event_rows(site, visits)
    revenue_index, props_index = EVENT_COLUMNS.index("revenue"), EVENT_COLUMNS.index("props")
    for n, row in enumerate(r for r in rows if r[revenue_index] > 0):
        if n % 2:  # every other purchase carries a provider's transaction id
            row[props_index] = {**row[props_index], "transaction_id": f"pi_{n}"}
    expected = sorted(
        (str(r[1]), r[revenue_index], r[props_index].get("transaction_id", ""))
        for r in rows
        if r[revenue_index] > 0
    )
    assert expected, "the generated traffic has purchases"

    half = len(rows) // 2
    await store.insert("events", rows[:half], EVENT_COLUMNS, dedup_token="batch-1")
    await store.insert("events", rows[:half], EVENT_COLUMNS, dedup_token="batch-1")  # a replay
    await store.insert("events", rows[half:], EVENT_COLUMNS, dedup_token="batch-2")

    copied = await store.query(
        "SELECT toString(event_id), revenue, transaction_id FROM revenue_events"
        " WHERE website_id = {s:UUID} ORDER BY 1",
        parameters={"s": site},
    )
    assert sorted(tuple(r) for r in copied.result_rows) == expected
    stored = await store.query(
        "SELECT count(), sum(revenue > 0) FROM events WHERE website_id = {s:UUID}", parameters={"s": site}
    )
    assert stored.result_rows[0] == (len(rows), len(expected))
    for rollup in ("events_hourly", "events_daily"):  # the rollups' views drop the replay too
        rolled = await store.query(
            f"SELECT sum(events), sum(purchases) FROM {rollup}"
            " WHERE website_id = {s:UUID} AND dimension = ''",
            parameters={"s": site},
        )
        assert rolled.result_rows[0] == (len(rows), len(expected)), rollup

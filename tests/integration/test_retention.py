"""DATA_RETENTION_DAYS: traffic older than the setting is deleted (ClickHouse TTL), payments are
kept, and what remains still adds up between the raw tables and the rollups."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from datafast.db.migrate import migrate_clickhouse
from datafast.db.retention import RETAINED, apply_retention
from datafast.jobs import JOBS
from datafast.lib.adapters import Adapters, create_adapters
from tests.conftest import SettingsFactory
from tests.helpers import both_modes
from tests.integration.analytics.traffic import (
    EVENT_COLUMNS,
    SESSION_COLUMNS,
    event_rows,
    generate,
    session_rows,
)


@pytest.fixture
async def own(make_settings: SettingsFactory) -> AsyncIterator[Adapters]:
    """Adapters on a ClickHouse database of this test's own (a TTL is a table's, not a site's)."""
    settings = make_settings(
        CLICKHOUSE_DATABASE=f"retention_{uuid.uuid4().hex[:8]}", DATA_RETENTION_DAYS="30"
    )
    adapters = await create_adapters(settings, JOBS)
    await migrate_clickhouse(adapters.event_store)
    yield adapters
    await adapters.event_store.command(f"DROP DATABASE IF EXISTS {adapters.event_store.database}")
    await adapters.close()


async def _scalar(adapters: Adapters, sql: str, site: str) -> int:
    result = await adapters.event_store.query(sql, parameters={"s": site})
    return int(result.result_rows[0][0])


@both_modes
async def test_traffic_older_than_the_retention_is_deleted_and_the_rest_adds_up(own: Adapters) -> None:
    store, days = own.event_store, own.settings.data_retention_days
    site = str(uuid.uuid4())
    now = datetime.now(UTC).replace(microsecond=0)
    old = generate(1, now - timedelta(days=60), now - timedelta(days=50), 30)
    recent = generate(2, now - timedelta(days=6), now - timedelta(days=3), 30)
    await store.insert("events", event_rows(site, old + recent), EVENT_COLUMNS)
    await store.insert("sessions", session_rows(site, old + recent), SESSION_COLUMNS)
    recent_pageviews = sum(1 for v in recent for e in v.events if e.event_type == "pageview")
    raw_pageviews = "SELECT countIf(event_type = 'pageview') FROM events WHERE website_id = {s:UUID}"
    rolled_pageviews = (
        "SELECT sum(pageviews) FROM events_daily WHERE website_id = {s:UUID} AND dimension = 'page'"
    )
    assert await _scalar(own, raw_pageviews, site) > recent_pageviews  # the old traffic is there

    assert sorted(await apply_retention(store, days)) == sorted(RETAINED)
    assert await apply_retention(store, days) == []  # unchanged: nothing rewritten again
    for table in RETAINED:  # expire now rather than at the next background merge
        await store.command(f"OPTIMIZE TABLE {store.database}.{table} FINAL")

    oldest = "SELECT toUnixTimestamp(min(timestamp)) FROM events WHERE website_id = {s:UUID}"
    assert await _scalar(own, oldest, site) >= (now - timedelta(days=days)).timestamp()
    assert await _scalar(own, raw_pageviews, site) == recent_pageviews
    assert await _scalar(own, rolled_pageviews, site) == recent_pageviews  # rollups agree with the rows
    visits = "SELECT sum(sign) FROM sessions WHERE website_id = {s:UUID}"
    assert await _scalar(own, visits, site) == len(recent)
    for table in ("sessions_hourly", "events_hourly", "sessions_daily", "events_daily"):
        column = "hour" if table.endswith("hourly") else "day"
        kept = f"SELECT toUnixTimestamp(min({column})) FROM {table} WHERE website_id = {{s:UUID}}"
        assert await _scalar(own, kept, site) >= (now - timedelta(days=days + 1)).timestamp(), table

    # Turned off again: the TTLs go, nothing else changes.
    assert sorted(await apply_retention(store, 0)) == sorted(RETAINED)
    engines = await store.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
        parameters={"db": store.database},
    )
    assert [name for name, engine in engines.result_rows if " TTL " in str(engine)] == []
    assert await _scalar(own, raw_pageviews, site) == recent_pageviews


@both_modes
async def test_payments_are_never_expired(own: Adapters) -> None:
    await apply_retention(own.event_store, 30)
    engines = await own.event_store.query(
        "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
        parameters={"db": own.event_store.database},
    )
    with_ttl = {name for name, engine in engines.result_rows if " TTL " in str(engine)}
    assert with_ttl == set(RETAINED)
    assert "payments" not in with_ttl

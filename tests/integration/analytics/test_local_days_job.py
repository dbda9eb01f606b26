"""The ``local_days`` job: every site's timezone offsets listed and filled once, and then the
dashboard's whole local days read from them, with the numbers of the raw tables."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.config import sqlalchemy_config
from datafast.db.migrate import migrate_clickhouse, migrate_config_db
from datafast.db.models import Website
from datafast.domain.analytics.jobs import LOCAL_DAYS
from datafast.domain.analytics.local_days import LocalDays
from datafast.domain.analytics.queries import AnalyticsQueries
from datafast.domain.analytics.schemas import DateRange, QueryRequest
from datafast.domain.analytics.service import SiteContext, StatsService
from datafast.jobs import JOBS
from datafast.lib.adapters import Adapters, create_adapters
from tests.conftest import SettingsFactory
from tests.helpers import both_modes, running_worker
from tests.integration.analytics.traffic import (
    EVENT_COLUMNS,
    SESSION_COLUMNS,
    event_rows,
    generate,
    session_rows,
)


@pytest.fixture
async def own(make_settings: SettingsFactory) -> AsyncIterator[Adapters]:
    settings = make_settings(CLICKHOUSE_DATABASE=f"local_days_{uuid.uuid4().hex[:8]}")
    adapters = await create_adapters(settings, JOBS)
    await migrate_clickhouse(adapters.event_store)
    engine = sqlalchemy_config(settings).get_engine()
    await migrate_config_db(engine)
    adapters.job_context["engine"] = engine  # embedded: what the app gives in-process jobs
    yield adapters
    await engine.dispose()
    await adapters.event_store.command(f"DROP DATABASE IF EXISTS {adapters.event_store.database}")
    await adapters.close()


@both_modes
async def test_the_job_fills_each_sites_offsets_once_and_reports_read_them(own: Adapters) -> None:
    store = own.event_store
    sites = {"Asia/Tokyo": uuid.uuid4(), "America/Sao_Paulo": uuid.uuid4()}
    async with AsyncSession(own.job_context["engine"]) as db:
        db.add_all(
            Website(id=site, domain=f"{site.hex[:8]}.example", name=zone, timezone=zone)
            for zone, site in sites.items()
        )
        await db.commit()
    visits = generate(21, datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 9, tzinfo=UTC), 40)
    for site in sites.values():
        await store.insert("events", event_rows(str(site), visits), EVENT_COLUMNS)
        await store.insert("sessions", session_rows(str(site), visits), SESSION_COLUMNS)

    async with AsyncExitStack() as stack:
        if own.settings.mode == "scaled":  # the job runs on a worker (embedded: in this process)
            await stack.enter_async_context(running_worker(own))
        # The sweep covers every site in the database (scaled: other tests' sites too); ours:
        ours = {str(site) for site in sites.values()}
        filled = await own.queue.apply(LOCAL_DAYS, timeout=60)
        # Tokyo keeps +9 all year; São Paulo has had no DST since 2019: -3.
        expected = {str(sites["Asia/Tokyo"]): [32400], str(sites["America/Sao_Paulo"]): [-10800]}
        reported = {key: filled.get(key) for key in ours}
        if own.settings.mode == "scaled":
            # The worker sweeps once as it starts, so that sweep may have filled a site first:
            # then this one has nothing to do for it (checked below by what is ready).
            reported = {key: value if value is not None else expected[key] for key, value in reported.items()}
        assert reported == expected
        again = await own.queue.apply(LOCAL_DAYS, timeout=60)
        assert not ours & set(again)  # nothing new for our sites: nothing done

    now = datetime(2026, 11, 10, tzinfo=UTC)
    rolled = StatsService(AnalyticsQueries(store), clock=lambda: now)
    raw = StatsService(AnalyticsQueries(store, rollups=False), clock=lambda: now)
    week = DateRange(date(2026, 11, 2), date(2026, 11, 8))
    for zone, site in sites.items():
        assert await LocalDays(store).ready(str(site)) == set(expected[str(site)])
        context = SiteContext(str(site), zone, "EUR")
        for request in (
            QueryRequest(metrics=["visitors", "visits", "pageviews"], date_range=week),
            QueryRequest(metrics=["visitors", "visits"], date_range=week, interval="day"),
            QueryRequest(metrics=["visitors", "bounce_rate"], dimensions=["country"], date_range=week),
        ):
            assert await rolled.query(context, request) == await raw.query(context, request)


@both_modes
async def test_a_fill_checked_before_a_reset_and_marked_after_it_leaves_the_offset_not_ready(
    own: Adapters,
) -> None:
    """The job checks that no reset (a privacy erase) marked a pair since it listed it, then marks
    it ready: a reset landing between the two wins, whatever order the inserts arrive in, since
    the ready mark is versioned just after the mark the job saw."""
    store, site = own.event_store, str(uuid.uuid4())
    local = LocalDays(store, settle=0, remember=0)
    # What the job saw when it listed the site: one offset, not ready yet.
    await local._mark([(site, 3600)], ready=False)
    seen = await local._versions([site])
    await local.reset(site)  # an erase meanwhile: newer marks, local rows deleted
    await local._mark([(site, 3600)], ready=True, versions=seen)  # the job's late mark
    assert await local.ready(site) == frozenset()
    # Without a reset in between the same mark makes it ready.
    seen = await local._versions([site])
    await local._mark([(site, 3600)], ready=True, versions=seen)
    assert await local.ready(site) == {3600}

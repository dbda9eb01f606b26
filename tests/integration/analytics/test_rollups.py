"""The hourly rollups answer exactly what the raw tables answer, for every query they serve.

(The correctness tests compare both paths with the Python truth too: queries without filters
go through the rollups, queries with filters through the raw tables.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from datafast.domain.analytics.catalog import (
    DIMENSIONS,
    EVENT_METRICS,
    METRICS,
    MONEY_METRICS,
    SESSION_METRICS,
)
from datafast.domain.analytics.dates import resolve_range, whole_hour_offsets
from datafast.domain.analytics.local_days import LocalDays
from datafast.domain.analytics.queries import AnalyticsQueries
from datafast.domain.analytics.schemas import DateRange, Filter, QueryRequest
from datafast.domain.analytics.service import SiteContext, StatsService
from datafast.lib.eventstore import EventStore
from tests.integration.analytics.conftest import NOW, Dataset
from tests.integration.analytics.traffic import (
    EVENT_COLUMNS,
    SESSION_COLUMNS,
    event_rows,
    generate,
    session_rows,
)

RANGES = [
    ("2026-10-24", "2026-10-26"),
    ("2026-10-25", "2026-10-25"),
    ("2026-03-29", "2026-03-29"),
    ("2026-03-27", "2026-03-31"),
    ("2026-11-10", "2026-11-12"),
    ("2026-09-20", "2026-11-12"),  # longer than HOURLY_SUMS_DAYS: whole days from the daily rollups
]


def services(store: EventStore) -> tuple[StatsService, StatsService, AnalyticsQueries]:
    rolled = AnalyticsQueries(store, rollups=True)
    return (
        StatsService(rolled, clock=lambda: NOW),
        StatsService(AnalyticsQueries(store, rollups=False), clock=lambda: NOW),
        rolled,
    )


@pytest.mark.parametrize(("first", "last"), RANGES)
async def test_rollups_equal_raw_queries_for_totals_series_and_every_breakdown(
    store: EventStore, dataset: Dataset, first: str, last: str
) -> None:
    rolled, raw, queries = services(store)
    date_range = DateRange(date.fromisoformat(first), date.fromisoformat(last))
    requests = [QueryRequest(metrics=list(METRICS), date_range=date_range)]
    hours = ["hour"] if (date_range.end - date_range.start).days < 31 else []  # hourly series: 31 days
    requests += [
        QueryRequest(metrics=list(METRICS), date_range=date_range, interval=interval)  # type: ignore[arg-type]
        for interval in (*hours, "day", "week", "month")
    ]
    for name, dim in DIMENSIONS.items():
        # Money metrics are never rolled up (they come from the conversions, see analytics.conversions).
        metrics = (SESSION_METRICS if dim.scope == "session" else EVENT_METRICS) - MONEY_METRICS
        if name == "exit_page":
            metrics = frozenset({"visits", "pageviews", "bounce_rate", "visit_duration"})
        requests.append(
            QueryRequest(metrics=sorted(metrics), dimensions=[name], date_range=date_range, limit=1000)
        )

    for request in requests:
        fast = await rolled.query(dataset.site, request)
        slow = await raw.query(dataset.site, request)
        assert fast == slow, request
        # …and the rollups really served it.
        spec = rolled._spec(dataset.site, request, resolve_range(date_range, dataset.site.timezone, NOW))
        for scope in [spec.scope] if spec.dimensions else ["session", "event"]:
            assert queries._rollup(spec, scope, spec.metrics if spec.dimensions else ["visits"]) is not None


async def test_filters_and_changing_values_are_left_to_the_raw_tables(
    store: EventStore, dataset: Dataset
) -> None:
    rolled, _, queries = services(store)
    date_range = DateRange(date(2026, 10, 24), date(2026, 10, 26))
    range_ = resolve_range(date_range, dataset.site.timezone, NOW)
    with_filter = rolled._spec(
        dataset.site,
        QueryRequest(
            metrics=["visitors"],
            filters=[Filter(dimension="source", values=["Google"])],
            date_range=date_range,
        ),
        range_,
    )
    exit_visitors = rolled._spec(
        dataset.site,
        QueryRequest(metrics=["visitors"], dimensions=["exit_page"], date_range=date_range),
        range_,
    )
    assert queries._rollup(with_filter, "event", ["visitors"]) is None
    assert queries._rollup(exit_visitors, "session", ["visitors"]) is None


def test_rollups_only_serve_timezones_with_whole_hour_offsets() -> None:
    for zone, expected in [
        ("Europe/Paris", True),
        ("America/New_York", True),
        ("UTC", True),
        ("Asia/Kolkata", False),
        ("Australia/Lord_Howe", False),
        ("America/St_Johns", False),
    ]:
        range_ = resolve_range(DateRange(date(2026, 3, 1), date(2026, 11, 30)), zone, NOW)
        assert whole_hour_offsets(zone, range_.start_utc, range_.end_utc) is expected, zone


async def test_local_days_give_the_same_numbers_across_dst_changes(
    store: EventStore, dataset: Dataset
) -> None:
    """Once the site's offsets are ready, whole local days read one visitor state per day and value
    (0009_rollups_local_days); every query still equals the raw tables, across both DST changes,
    and the raw tables' answers are what the local days give."""
    rolled, raw, _ = services(store)
    site = dataset.site
    local = LocalDays(store, settle=0)
    assert await local.prepare(site.id, site.timezone, NOW) == [3600, 7200]
    assert await local.prepare(site.id, site.timezone, NOW) == []  # nothing left to fill
    assert await local.ready(site.id) == {3600, 7200}
    # Another site's rows stay out of this site's local days.
    assert await local.ready(dataset.other_site) == frozenset()
    other = await store.query(
        "SELECT count() FROM sessions_local_daily WHERE website_id = {site:UUID}",
        parameters={"site": dataset.other_site},
    )
    assert other.result_rows[0][0] == 0

    async def same_numbers() -> None:
        for first, last in RANGES:
            date_range = DateRange(date.fromisoformat(first), date.fromisoformat(last))
            requests = [
                QueryRequest(metrics=list(METRICS), date_range=date_range),
                QueryRequest(metrics=list(METRICS), date_range=date_range, interval="day"),
                QueryRequest(metrics=list(METRICS), date_range=date_range, interval="week"),
            ]
            requests += [
                QueryRequest(
                    metrics=sorted(
                        (SESSION_METRICS if DIMENSIONS[name].scope == "session" else EVENT_METRICS)
                        - MONEY_METRICS
                    ),
                    dimensions=[name],
                    date_range=date_range,
                    limit=1000,
                )
                for name in ("source", "page", "country", "entry_page", "goal")
            ]
            for request in requests:
                assert await rolled.query(site, request) == await raw.query(site, request), request

    await same_numbers()
    # The local rows really answer: a 24-hour day at +1 is one row of its own.
    rows = await store.query(
        "SELECT count() FROM sessions_local_daily WHERE website_id = {site:UUID} AND dimension = ''"
        " AND utc_offset = 3600 AND day = '2026-10-26'",
        parameters={"site": site.id},
    )
    assert rows.result_rows[0][0] >= 1


async def test_local_days_follow_rows_inserted_after_the_fill(store: EventStore, dataset: Dataset) -> None:
    """A visit inserted after a site's local days were filled (a late batch) reaches them through
    the view: the numbers move, and still equal the raw tables'."""
    rolled, raw, _ = services(store)
    site = SiteContext(str(uuid.uuid4()), "America/New_York", "USD")
    start, end = datetime(2026, 10, 20, 3, tzinfo=UTC), datetime(2026, 10, 27, 3, tzinfo=UTC)
    await store.insert("events", event_rows(site.id, generate(11, start, end, 30)), EVENT_COLUMNS)
    await store.insert("sessions", session_rows(site.id, generate(11, start, end, 30)), SESSION_COLUMNS)
    assert await LocalDays(store, settle=0).prepare(site.id, site.timezone, NOW) == [-18000, -14400]
    week = DateRange(date(2026, 10, 20), date(2026, 10, 26))
    requests = [
        QueryRequest(metrics=["visitors", "visits", "pageviews"], date_range=week),
        QueryRequest(metrics=["visitors", "visits"], date_range=week, interval="day"),
        QueryRequest(metrics=["visitors", "visits", "bounce_rate"], dimensions=["source"], date_range=week),
        QueryRequest(metrics=["visitors", "pageviews"], dimensions=["page"], date_range=week),
    ]
    before = [await rolled.query(site, r) for r in requests]
    assert before == [await raw.query(site, r) for r in requests]

    late = generate(12, datetime(2026, 10, 22, 14, tzinfo=UTC), datetime(2026, 10, 22, 18, tzinfo=UTC), 6)
    await store.insert("events", event_rows(site.id, late), EVENT_COLUMNS)
    await store.insert("sessions", session_rows(site.id, late), SESSION_COLUMNS)
    after = [await rolled.query(site, r) for r in requests]
    assert after != before
    assert after == [await raw.query(site, r) for r in requests]

"""The hourly rollups answer exactly what the raw tables answer, for every query they serve.

(The correctness tests compare both paths with the Python truth too: queries without filters
go through the rollups, queries with filters through the raw tables.)
"""

from __future__ import annotations

from datetime import date

import pytest

from datafast.domain.analytics.catalog import (
    DIMENSIONS,
    EVENT_METRICS,
    METRICS,
    MONEY_METRICS,
    SESSION_METRICS,
)
from datafast.domain.analytics.dates import resolve_range, whole_hour_offsets
from datafast.domain.analytics.queries import AnalyticsQueries
from datafast.domain.analytics.schemas import DateRange, Filter, QueryRequest
from datafast.domain.analytics.service import StatsService
from datafast.lib.eventstore import EventStore
from tests.integration.analytics.conftest import NOW, Dataset

RANGES = [
    ("2026-10-24", "2026-10-26"),
    ("2026-10-25", "2026-10-25"),
    ("2026-03-29", "2026-03-29"),
    ("2026-03-27", "2026-03-31"),
    ("2026-11-10", "2026-11-12"),
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
    requests += [
        QueryRequest(metrics=list(METRICS), date_range=date_range, interval=interval)  # type: ignore[arg-type]
        for interval in ("hour", "day", "week", "month")
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

"""Every metric, breakdown and filter compared with the truth computed in Python from the visits.

Money metrics (revenue, purchases, conversions…) are checked here where this dataset (tracker
purchases only, no payments) makes them plain sums of events: totals and series without a filter.
Under a filter or in a breakdown they follow the attribution model; tests/integration/revenue/
test_revenue_analytics.py checks them there against a truth with payments and attribution.

The dataset (see conftest) straddles both 2026 DST changes in Europe/Paris, local midnights
and the edges of the ranges asked for; sessions rows are written with cancel/state pairs.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from datafast.domain.analytics.catalog import EVENT_METRICS, METRICS, MONEY_METRICS, SESSION_METRICS
from datafast.domain.analytics.dates import bucket_labels, resolve_range
from datafast.domain.analytics.schemas import DateRange, Filter, FunnelRead, FunnelStep, OrderBy, QueryRequest
from datafast.domain.analytics.service import StatsService
from datafast.errors import InvalidInput
from tests.integration.analytics.conftest import NOW, Dataset
from tests.integration.analytics.traffic import EVENT_DIMENSIONS, SESSION_DIMENSIONS, F, local_range

RANGES = {
    "autumn-dst-3-days": ("2026-10-24", "2026-10-26"),
    "25-hour-day": ("2026-10-25", "2026-10-25"),
    "day-after-midnight-crossing": ("2026-10-26", "2026-10-26"),
    "spring-dst-23-hour-day": ("2026-03-29", "2026-03-29"),
    "spring-3-days": ("2026-03-28", "2026-03-30"),
    "empty": ("2026-11-10", "2026-11-12"),
}
FILTERS: dict[str, list[F]] = {
    "none": [],
    "source-list": [F("source", "is", ("Google", "Twitter"))],
    "page-contains": [F("page", "contains", ("blog",))],
    "not-fr-desktop": [F("country", "is_not", ("FR",)), F("device", "is", ("desktop",))],
    "goal": [F("goal", "is", ("signup",))],
    "prop-and-channel": [F("prop:plan", "is", ("pro",)), F("channel", "is", ("search", "social"))],
    "entry-page": [F("entry_page", "is", ("/pricing", "/"))],
    "campaign-case-insensitive": [F("utm_campaign", "contains", ("LAUNCH",))],
    "page-not-contains": [F("page", "not_contains", ("/blog",))],
    "unicode-page": [F("page", "is", ("/Über",))],
    "exit-page": [F("exit_page", "is_not", ("/docs", "/"))],
    "exit-page-and-hostname": [F("exit_page", "is_not", ("/docs",)), F("hostname", "is", ("shop.example",))],
}


def api_filters(filters: list[F]) -> list[Filter]:
    return [Filter(dimension=f.dimension, operator=f.operator, values=list(f.values)) for f in filters]  # type: ignore[arg-type]


def assert_metrics(actual: dict[str, Any], expected: dict[str, Any], context: str) -> None:
    assert set(actual) == set(expected), context
    for name, value in expected.items():
        if isinstance(value, int):
            assert actual[name] == value, f"{context}: {name} {actual[name]} != {value}"
        else:
            assert actual[name] == pytest.approx(value, rel=1e-9, abs=1e-12), f"{context}: {name}"


@pytest.mark.parametrize("filters", FILTERS, ids=list(FILTERS))
@pytest.mark.parametrize("range_name", RANGES, ids=list(RANGES))
async def test_totals_equal_the_truth(
    stats: StatsService, dataset: Dataset, range_name: str, filters: str
) -> None:
    first, last = RANGES[range_name]
    start, end = local_range("Europe/Paris", first, last)
    metrics = list(METRICS) if filters == "none" else [m for m in list(METRICS) if m not in MONEY_METRICS]
    request = QueryRequest(
        metrics=metrics,
        filters=api_filters(FILTERS[filters]),
        date_range=DateRange(date.fromisoformat(first), date.fromisoformat(last)),
    )
    result = await stats.query(dataset.site, request)

    assert result.totals is not None
    expected = dataset.truth.totals(start, end, FILTERS[filters], metrics)
    assert_metrics(result.totals, expected, f"{range_name}/{filters}")
    if range_name != "empty" and filters == "none":
        assert expected["visits"] > 20  # the dataset really covers this range


@pytest.mark.parametrize("filters", ["none", "source-list", "page-contains", "goal", "exit-page"])
@pytest.mark.parametrize("dimension", SESSION_DIMENSIONS + EVENT_DIMENSIONS)
async def test_every_breakdown_equals_the_truth(
    stats: StatsService, dataset: Dataset, dimension: str, filters: str
) -> None:
    first, last = RANGES["autumn-dst-3-days"]
    start, end = local_range("Europe/Paris", first, last)
    metrics = sorted((SESSION_METRICS if dimension in SESSION_DIMENSIONS else EVENT_METRICS) - MONEY_METRICS)
    request = QueryRequest(
        metrics=metrics,
        dimensions=[dimension],
        filters=api_filters(FILTERS[filters]),
        date_range=DateRange(date.fromisoformat(first), date.fromisoformat(last)),
        limit=1000,
    )
    result = await stats.query(dataset.site, request)

    assert result.rows is not None
    assert not result.has_more
    actual = {row.dimensions[0]: row.metrics for row in result.rows}
    expected = dataset.truth.breakdown(start, end, FILTERS[filters], metrics, dimension)
    assert set(actual) == set(expected)
    for value, metrics_ in expected.items():
        assert_metrics(actual[value], metrics_, f"{dimension}={value!r}/{filters}")
    if filters == "none":
        assert len(expected) >= 2


@pytest.mark.parametrize(
    ("interval", "range_name"),
    [
        ("hour", "25-hour-day"),
        ("hour", "spring-dst-23-hour-day"),
        ("hour", "day-after-midnight-crossing"),
        ("day", "autumn-dst-3-days"),
        ("day", "spring-3-days"),
        ("week", "autumn-dst-3-days"),
        ("month", "spring-3-days"),
        ("day", "empty"),
    ],
)
@pytest.mark.parametrize("filters", ["none", "page-contains", "not-fr-desktop"])
async def test_timeseries_equals_the_truth_with_empty_buckets_filled(
    stats: StatsService, dataset: Dataset, interval: str, range_name: str, filters: str
) -> None:
    first, last = RANGES[range_name]
    start, end = local_range("Europe/Paris", first, last)
    metrics = ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]
    if filters == "none":
        metrics += ["revenue", "conversions"]
    request = QueryRequest(
        metrics=metrics,
        filters=api_filters(FILTERS[filters]),
        date_range=DateRange(date.fromisoformat(first), date.fromisoformat(last)),
        interval=interval,  # type: ignore[arg-type]
    )
    result = await stats.query(dataset.site, request)

    assert result.timeseries is not None
    labels = [b.bucket for b in result.timeseries]
    assert len(labels) == len(set(labels))
    expected = dataset.truth.timeseries(start, end, FILTERS[filters], metrics, interval)
    assert set(expected) <= set(labels)
    zero = dict.fromkeys(metrics, 0)
    for bucket in result.timeseries:
        assert_metrics(bucket.metrics, expected.get(bucket.bucket, zero), f"{interval} {bucket.bucket}")


def test_hour_buckets_follow_the_dst_changes() -> None:
    autumn = resolve_range(DateRange(date(2026, 10, 25), date(2026, 10, 25)), "Europe/Paris", NOW)
    spring = resolve_range(DateRange(date(2026, 3, 29), date(2026, 3, 29)), "Europe/Paris", NOW)
    autumn_labels = bucket_labels(autumn, "hour")
    spring_labels = bucket_labels(spring, "hour")

    assert (autumn.end_utc - autumn.start_utc) == timedelta(hours=25)
    assert len(autumn_labels) == 25
    assert autumn_labels[2:4] == ["2026-10-25T02:00+0200", "2026-10-25T02:00+0100"]
    assert (spring.end_utc - spring.start_utc) == timedelta(hours=23)
    assert len(spring_labels) == 23
    assert "2026-03-29T02:00+0100" not in spring_labels
    assert spring_labels[2] == "2026-03-29T03:00+0200"


async def test_an_empty_range_answers_zeros(stats: StatsService, dataset: Dataset) -> None:
    result = await stats.query(
        dataset.site,
        QueryRequest(metrics=list(METRICS), date_range=DateRange(date(2026, 11, 10), date(2026, 11, 12))),
    )
    assert result.totals == dict.fromkeys(list(METRICS), 0)
    rows = await stats.query(
        dataset.site,
        QueryRequest(
            metrics=["visitors"],
            dimensions=["source"],
            date_range=DateRange(date(2026, 11, 10), date(2026, 11, 12)),
        ),
    )
    assert rows.rows == []


async def test_compare_answers_the_previous_period_of_equal_length(
    stats: StatsService, dataset: Dataset
) -> None:
    result = await stats.query(
        dataset.site,
        QueryRequest(
            metrics=["visitors", "visits", "revenue"],
            date_range=DateRange(date(2026, 10, 26), date(2026, 10, 26)),
            interval="hour",
            compare="previous_period",
        ),
    )
    assert result.comparison is not None
    assert (result.comparison.date_range.start, result.comparison.date_range.end) == (date(2026, 10, 25),) * 2
    start, end = local_range("Europe/Paris", "2026-10-25", "2026-10-25")
    assert_metrics(
        result.comparison.totals,
        dataset.truth.totals(start, end, [], ["visitors", "visits", "revenue"]),
        "compare",
    )
    assert result.comparison.timeseries is not None
    assert len(result.comparison.timeseries) == 25


@pytest.mark.parametrize(
    ("dimension", "metrics"),
    [("source", ["visitors", "visits", "bounce_rate"]), ("page", ["visitors", "pageviews"])],
)
async def test_a_compared_breakdown_gives_each_row_its_previous_period(
    stats: StatsService, dataset: Dataset, dimension: str, metrics: list[str]
) -> None:
    result = await stats.query(
        dataset.site,
        QueryRequest(
            metrics=metrics,
            dimensions=[dimension],
            date_range=DateRange(date(2026, 10, 26), date(2026, 10, 26)),
            compare="previous_period",
            limit=3,
        ),
    )
    assert result.rows is not None
    assert result.comparison is not None
    assert result.comparison.rows is not None
    start, end = local_range("Europe/Paris", "2026-10-25", "2026-10-25")
    before = dataset.truth.breakdown(start, end, [], metrics, dimension)
    assert [r.dimensions for r in result.comparison.rows] == [r.dimensions for r in result.rows]
    for row in result.comparison.rows:
        value = row.dimensions[0]
        assert_metrics(row.metrics, before.get(value, dict.fromkeys(metrics, 0)), f"{dimension}={value}")


async def test_pages_of_a_breakdown_follow_the_order_without_gaps_or_repeats(
    stats: StatsService, dataset: Dataset
) -> None:
    base = QueryRequest(
        metrics=["visits", "visitors"],
        dimensions=["entry_page"],
        date_range=DateRange(date(2026, 10, 24), date(2026, 10, 26)),
        order_by=[OrderBy("visits", "asc")],
        limit=2,
    )
    seen: list[tuple[str, Any]] = []
    offset = 0
    while True:
        page = await stats.query(dataset.site, QueryRequest(**{**_fields(base), "offset": offset}))
        assert page.rows is not None
        seen += [(r.dimensions[0], r.metrics["visits"]) for r in page.rows]
        if not page.has_more:
            break
        offset += 2
    start, end = local_range("Europe/Paris", "2026-10-24", "2026-10-26")
    expected = dataset.truth.breakdown(start, end, [], ["visits"], "entry_page")
    assert sorted(seen, key=lambda r: (r[1], r[0])) == seen
    assert dict(seen) == {k: v["visits"] for k, v in expected.items()}
    by_name = await stats.query(
        dataset.site,
        QueryRequest(**{**_fields(base), "order_by": [OrderBy("entry_page", "desc")], "limit": 100}),
    )
    assert by_name.rows is not None
    names = [r.dimensions[0] for r in by_name.rows]
    assert names == sorted(names, reverse=True)


def _fields(request: QueryRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in request.__struct_fields__}


async def test_another_sites_traffic_never_shows(stats: StatsService, dataset: Dataset) -> None:
    from datafast.domain.analytics.service import SiteContext

    other = SiteContext(dataset.other_site, "Europe/Paris", "EUR")
    mine = await stats.query(
        dataset.site,
        QueryRequest(metrics=["events"], date_range=DateRange(date(2026, 10, 20), date(2026, 10, 30))),
    )
    theirs = await stats.query(
        other, QueryRequest(metrics=["events"], date_range=DateRange(date(2026, 10, 20), date(2026, 10, 30)))
    )
    assert mine.totals is not None
    assert theirs.totals is not None
    expected = sum(len(v.events) for v in dataset.visits if v.started_at.month == 10)
    assert mine.totals["events"] == expected
    assert 0 < theirs.totals["events"] != expected


@pytest.mark.parametrize("window", [600, 3600, 86400])
async def test_funnel_counts_visitors_per_step_within_the_window(
    stats: StatsService, dataset: Dataset, window: int
) -> None:
    steps = [FunnelStep("page", "/pricing"), FunnelStep("page", "/docs"), FunnelStep("goal", "signup")]
    funnel = FunnelRead(
        id="f", website_id=dataset.site.id, name="Signup", steps=steps, window_seconds=window, created_at=NOW
    )
    result = await stats.funnel(dataset.site, funnel, DateRange(date(2026, 10, 24), date(2026, 10, 26)), [])

    start, end = local_range("Europe/Paris", "2026-10-24", "2026-10-26")
    expected = dataset.truth.funnel(start, end, [(s.kind, s.value) for s in steps], timedelta(seconds=window))
    assert [s.visitors for s in result.steps] == expected
    assert expected[0] > expected[1] > 0
    assert result.steps[1].dropoff == expected[0] - expected[1]
    assert result.steps[2].conversion_rate == pytest.approx(expected[2] / expected[0])
    if window == 86400:
        assert expected[2] > 0


async def test_visitor_list_and_profile_show_first_source_totals_and_journey(
    stats: StatsService, dataset: Dataset
) -> None:
    listing = await stats.visitors(
        dataset.site, DateRange(date(2026, 10, 24), date(2026, 10, 26)), [], 1000, 0
    )
    start, end = local_range("Europe/Paris", "2026-10-24", "2026-10-26")
    in_range: dict[str, list[Any]] = {}
    for visit in dataset.visits:
        for event in visit.events:
            if start <= event.timestamp < end:
                in_range.setdefault(visit.visitor_id, []).append((event.timestamp, visit, event))
    assert {v.visitor_id for v in listing.visitors} == set(in_range)
    assert [v.last_seen for v in listing.visitors] == sorted(
        (v.last_seen for v in listing.visitors), reverse=True
    )
    for summary in listing.visitors:
        events = sorted(in_range[summary.visitor_id], key=lambda t: t[0])
        first_visit = events[0][1]
        assert summary.source == (first_visit.source if events[0][2] is first_visit.events[0] else "")
        assert summary.events == len(events)
        assert summary.revenue == sum(e.revenue for _, _, e in events)
        assert summary.visits == len({v.session_id for _, v, _ in events})

    buyer = next(v for v in dataset.visits if any(e.event_type == "purchase" for e in v.events))
    profile = await stats.visitor(dataset.site, buyer.visitor_id)
    own = sorted((v for v in dataset.visits if v.visitor_id == buyer.visitor_id), key=lambda v: v.started_at)
    assert [s.session_id for s in profile.sessions] == [v.session_id for v in own]
    assert profile.first_source == own[0].source
    assert profile.revenue == sum(e.revenue for v in own for e in v.events)
    for session, visit in zip(profile.sessions, own, strict=True):
        assert [e.pathname for e in session.journey] == [e.pathname for e in visit.events]
        assert session.exit_page == visit.attribute("exit_page")
        assert session.pageviews == len(visit.pageviews)


@pytest.mark.parametrize(
    ("request_", "key"),
    [
        (QueryRequest(metrics=["nope"]), "metrics"),
        (QueryRequest(dimensions=["nope"]), "dimensions"),
        (QueryRequest(metrics=["bounce_rate"], dimensions=["page"]), "metrics"),
        (QueryRequest(metrics=["visit_duration"], dimensions=["goal"]), "metrics"),
        (QueryRequest(dimensions=["source", "page"]), "dimensions"),
        (QueryRequest(dimensions=["source"], interval="day"), "interval"),
        (QueryRequest(filters=[Filter(dimension="prop:", values=["x"])]), "filters"),
        (QueryRequest(order_by=[OrderBy("revenue")]), "order_by"),
        (QueryRequest(date_range=DateRange(date(2026, 10, 2), date(2026, 10, 1))), "date_range"),
        (QueryRequest(date_range=DateRange(date(2016, 1, 1), date(2026, 10, 1))), "date_range"),
        (QueryRequest(interval="hour", date_range="90d"), "interval"),
    ],
)
async def test_bad_queries_are_refused_with_the_field_named(
    stats: StatsService, dataset: Dataset, request_: QueryRequest, key: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await stats.query(dataset.site, request_)
    assert raised.value.extra["errors"][0]["key"] == key  # type: ignore[index]

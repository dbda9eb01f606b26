"""Scroll depth: the tracker's ``scroll`` reports go through the real ingest into ``page_scrolls``
(not ``events``, not the visits), and the page breakdown's ``scroll_depth`` averages each
visitor's deepest report per page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from datafast.domain.analytics.queries import AnalyticsQueries
from datafast.domain.analytics.schemas import DateRange, Filter, OrderBy, QueryRequest
from datafast.domain.analytics.service import SiteContext, StatsService
from datafast.domain.sites import privacy
from datafast.errors import InvalidInput
from tests.integration.ingest.conftest import Pipeline, pipeline  # noqa: F401 (the fixture)


async def _scrolls(ingest: Pipeline) -> list[tuple[str, str, int]]:
    result = await ingest.adapters.event_store.query(
        "SELECT visitor_id, pathname, depth FROM page_scrolls WHERE website_id = {s:UUID}"
        " ORDER BY visitor_id, pathname, depth",
        parameters={"s": ingest.site_id},
    )
    return [tuple(row) for row in result.result_rows]  # type: ignore[misc]


async def test_scroll_reports_are_stored_apart_and_the_page_breakdown_averages_each_visitors_deepest(
    pipeline: Pipeline,  # noqa: F811
) -> None:
    at = datetime.now(UTC) - timedelta(minutes=30)
    one = {"visitor_id": "v1", "session_id": "s1"}
    two = {"visitor_id": "v2", "session_id": "s2"}
    await pipeline.visit(at, "/a?utm_campaign=launch", **one)
    await pipeline.visit(at, "/a", **two)
    await pipeline.visit(at + timedelta(minutes=1), "/b", **one)
    await pipeline.visit(at + timedelta(minutes=2), "/c", **one)
    # Reported on leaving: v1 went to 40 %, came back and reached 75 %; v2 stopped at 25 %.
    for who, path, depth in [(one, "/a", "40"), (one, "/a", "75"), (two, "/a", "25")]:
        await pipeline.visit(
            at + timedelta(minutes=3), path, event_type="scroll", props={"depth": depth}, **who
        )
    # A single-page app had moved on to /c: the report names the page measured.
    props = {"depth": "100", "url": "https://sessions.example/b"}
    await pipeline.visit(at + timedelta(minutes=3), "/c", event_type="scroll", props=props, **one)
    for bad in ("0", "101", "deep"):  # not a depth: dropped
        await pipeline.visit(
            at + timedelta(minutes=3), "/c", event_type="scroll", props={"depth": bad}, **one
        )

    rows = await pipeline.rows()
    assert sorted(row["pathname"] for row in rows) == ["/a", "/a", "/b", "/c"]  # pageviews only
    assert await _scrolls(pipeline) == [
        ("v1", "/a", 40),
        ("v1", "/a", 75),
        ("v1", "/b", 100),
        ("v2", "/a", 25),
    ]
    assert (await pipeline.session_totals())["pageviews"] == 4

    site = SiteContext(pipeline.site_id, "UTC", "USD")
    today = datetime.now(UTC).date()
    date_range = DateRange(today - timedelta(days=1), today)
    for rollups in (True, False):
        stats = StatsService(AnalyticsQueries(pipeline.adapters.event_store, rollups=rollups))
        result = await stats.query(
            site,
            QueryRequest(metrics=["pageviews", "scroll_depth"], dimensions=["page"], date_range=date_range),
        )
        assert result.rows is not None
        assert {r.dimensions[0]: r.metrics for r in result.rows} == {
            "/a": {"pageviews": 2, "scroll_depth": 50.0},  # (75 + 25) / 2
            "/b": {"pageviews": 1, "scroll_depth": 100.0},
            "/c": {"pageviews": 1, "scroll_depth": 0},  # nothing reported
        }
        # Filtered: the visitors with matching events (v1 came from the campaign).
        campaign = await stats.query(
            site,
            QueryRequest(
                metrics=["scroll_depth"],
                dimensions=["page"],
                date_range=date_range,
                filters=[Filter(dimension="utm_campaign", values=["launch"])],
            ),
        )
        assert campaign.rows is not None
        assert {r.dimensions[0]: r.metrics["scroll_depth"] for r in campaign.rows} == {
            "/a": 75.0,
            "/b": 100.0,
            "/c": 0,
        }


@pytest.mark.parametrize(
    ("dimensions", "order_by", "key"),
    [
        ([], [], "metrics"),
        (["source"], [], "metrics"),
        (["page", "hostname"], [], "metrics"),
        (["page"], [OrderBy("scroll_depth", "desc")], "order_by"),
    ],
)
async def test_scroll_depth_is_a_page_breakdown_metric_only(
    pipeline: Pipeline,  # noqa: F811
    dimensions: list[str],
    order_by: list[OrderBy],
    key: str,
) -> None:
    stats = StatsService(AnalyticsQueries(pipeline.adapters.event_store))
    site = SiteContext(pipeline.site_id, "UTC", "USD")
    request = QueryRequest(metrics=["visitors", "scroll_depth"], dimensions=dimensions, order_by=order_by)

    with pytest.raises(InvalidInput) as refused:
        await stats.query(site, request)
    assert [error["key"] for error in refused.value.extra["errors"]] == [key]
    assert "scroll_depth" in str(refused.value)


async def test_privacy_export_and_erase_cover_the_scroll_reports(pipeline: Pipeline) -> None:  # noqa: F811
    at = datetime.now(UTC) - timedelta(minutes=10)
    for visitor, depth in (("v1", "60"), ("v2", "30")):
        ids = {"visitor_id": visitor, "session_id": f"s-{visitor}"}
        await pipeline.visit(at, "/a", **ids)
        await pipeline.visit(at, "/a", event_type="scroll", props={"depth": depth}, **ids)
    await pipeline.rows()
    store, site = pipeline.adapters.event_store, uuid.UUID(pipeline.site_id)
    subject = privacy.Subject.of("v1", None, None)
    match = await privacy.find(store, site, subject)

    exported = await privacy.export(store, site, "sessions.example", subject, match)
    assert [(row["pathname"], row["depth"]) for row in exported.tables["page_scrolls"]] == [("/a", 60)]
    erased = await privacy.erase(store, site, match)
    assert erased.deleted["page_scrolls"] == 1
    assert await _scrolls(pipeline) == [("v2", "/a", 30)]

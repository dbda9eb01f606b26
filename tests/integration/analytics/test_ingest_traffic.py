"""Stats over traffic written by the real ingest pipeline (events and its sessions rows), one
batch per event so every cancel/state pair sits in its own part, with a delayed event that
moves a visit's start and entry page; the truth is computed from what was sent."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from datafast.domain.analytics.catalog import METRICS
from datafast.domain.analytics.queries import AnalyticsQueries
from datafast.domain.analytics.schemas import DateRange, QueryRequest
from datafast.domain.analytics.service import SiteContext, StatsService
from datafast.domain.ingest.capture import RequestInfo
from datafast.domain.ingest.capture.schemas import TrackEvent
from tests.helpers import CHROME_MAC
from tests.integration.analytics.test_correctness import assert_metrics
from tests.integration.analytics.traffic import Event, Truth, Visit
from tests.integration.ingest.conftest import Pipeline, pipeline  # noqa: F401 (the fixture)

# (visitor, session, minutes after the start, path, event type, goal, revenue in units, campaign)
PLAN = [
    ("v1", "s1", 0, "/", "pageview", None, None, "launch"),
    ("v1", "s1", 3, "/pricing", "pageview", None, None, None),
    ("v1", "s1", 5, "/pricing", "goal", "signup", None, None),
    ("v2", "s2", 10, "/blog", "pageview", None, None, "autumn"),
    ("v3", "s3", 40, "/docs", "pageview", None, None, None),
    ("v3", "s3", 34, "/", "pageview", None, None, None),  # sent after, happened before
    ("v3", "s3", 50, "/pricing", "pageview", None, None, None),
    ("v1", "s4", 90, "/", "pageview", None, None, None),
    ("v1", "s4", 92, "/checkout", "purchase", None, 49.0, None),
    ("v4", "s5", 130, "/blog", "pageview", None, None, None),
]


async def test_stats_over_traffic_from_the_real_ingest_match_the_truth(pipeline: Pipeline) -> None:  # noqa: F811
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    visits: dict[str, Visit] = {}
    received = start
    for visitor, session, minutes, path, kind, goal, revenue, campaign in PLAN:
        at = start + timedelta(minutes=minutes)
        received = max(at, received + timedelta(minutes=1))  # the delayed one arrives after the previous
        event = TrackEvent(
            website_id=pipeline.site_id,
            page_url=f"https://sessions.example{path}" + (f"?utm_campaign={campaign}" if campaign else ""),
            event_type=kind,  # type: ignore[arg-type]
            visitor_id=visitor,
            session_id=session,
            goal_name=goal,
            revenue=revenue,
            timestamp=at.timestamp() * 1000,
            sent_at=received.timestamp() * 1000,
        )
        await pipeline.capture.accept(
            [event], None, RequestInfo("81.2.69.142", CHROME_MAC, received.timestamp())
        )
        await pipeline.writer.flush()  # one insert per event: cancel/state pairs in separate parts
        visit = visits.setdefault(
            session,
            Visit(session, visitor, "", "", "", "", "", "", "", "", "", "", "", "", "", "", []),
        )
        visit.events.append(
            Event(
                str(uuid.uuid4()),
                at,
                kind,
                path,
                "sessions.example",
                goal_name=goal or "",
                revenue=round((revenue or 0) * 100),
            )
        )
    for visit in visits.values():
        visit.events.sort(key=lambda e: e.timestamp)
        first = next(
            p
            for p in PLAN
            if p[1] == visit.session_id and start + timedelta(minutes=p[2]) == visit.events[0].timestamp
        )
        visit.utm_campaign = first[7] or ""
    truth = Truth(list(visits.values()), "UTC")
    site = SiteContext(pipeline.site_id, "UTC", "USD")
    today = datetime.now(UTC).date()
    date_range = DateRange(today - timedelta(days=1), today)
    lo = datetime.combine(today - timedelta(days=1), datetime.min.time(), UTC)
    hi = lo + timedelta(days=2)

    for rollups in (True, False):
        stats = StatsService(AnalyticsQueries(pipeline.adapters.event_store, rollups=rollups))
        totals = await stats.query(site, QueryRequest(metrics=list(METRICS), date_range=date_range))
        assert totals.totals is not None
        assert_metrics(totals.totals, truth.totals(lo, hi, [], list(METRICS)), f"totals rollups={rollups}")
        # Money in breakdowns follows the attribution model: tests/integration/revenue checks it.
        for dim, metrics in [
            ("page", ["visitors", "visits", "pageviews"]),
            ("goal", ["visitors", "events"]),
            ("utm_campaign", ["visitors", "visits", "bounce_rate", "visit_duration"]),
            ("exit_page", ["visits", "pageviews", "bounce_rate"]),
        ]:
            result = await stats.query(
                site, QueryRequest(metrics=metrics, dimensions=[dim], date_range=date_range, limit=1000)
            )
            assert result.rows is not None
            expected = truth.breakdown(lo, hi, [], metrics, dim)
            assert {r.dimensions[0]: r.metrics for r in result.rows} == expected, (dim, rollups)

    # The delayed pageview made "/" the visit's entry page (the raw tables collapse versions).
    raw = StatsService(AnalyticsQueries(pipeline.adapters.event_store, rollups=False))
    entry = await raw.query(
        site,
        QueryRequest(
            metrics=["visitors", "visits", "visit_duration"], dimensions=["entry_page"], date_range=date_range
        ),
    )
    assert entry.rows is not None
    assert {r.dimensions[0]: r.metrics for r in entry.rows} == truth.breakdown(
        lo, hi, [], ["visitors", "visits", "visit_duration"], "entry_page"
    )
    assert {r.dimensions[0] for r in entry.rows} == {"/", "/blog"}

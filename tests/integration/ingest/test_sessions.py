"""Visitors and sessions over time: the 30-minute inactivity rule and the midnight salt bridge."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from valkey.asyncio import Valkey

from datafast.db.config import sqlalchemy_config
from datafast.domain.ingest.capture import RequestInfo
from datafast.domain.ingest.capture.schemas import TrackEvent
from datafast.domain.ingest.capture.sites import SiteDirectory
from datafast.domain.ingest.log.writer import insert_rows
from datafast.domain.ingest.process import Processed, Processor
from datafast.domain.ingest.process.dedupe import MemoryDeduplicator
from datafast.domain.ingest.process.sessions import MemorySessionTracker, ValkeySessionTracker
from datafast.settings import Settings
from tests.helpers import CHROME_MAC
from tests.integration.ingest.conftest import Pipeline


async def test_a_new_session_starts_after_30_idle_minutes(pipeline: Pipeline) -> None:
    base = datetime.now(UTC).replace(second=0, microsecond=0)
    midnight = base.replace(hour=0, minute=0)
    if base - timedelta(minutes=80) < midnight:  # early in the UTC day: the visits all happen yesterday
        base = midnight - timedelta(minutes=1)  # (a new day brings a new cookieless salt)
    for minutes, path in [(0, "/a"), (10, "/b"), (39, "/c"), (70, "/d"), (71, "/e")]:
        await pipeline.visit(base - timedelta(minutes=80) + timedelta(minutes=minutes), path)

    rows = await pipeline.rows()
    assert [r["pathname"] for r in rows] == ["/a", "/b", "/c", "/d", "/e"]
    assert len({r["visitor_id"] for r in rows}) == 1  # cookieless: same browser, same day
    sessions = [r["session_id"] for r in rows]
    # 0→10→39: gaps under 30 minutes; 39→70 is 31 idle minutes: a new session.
    assert sessions[0] == sessions[1] == sessions[2] != sessions[3] == sessions[4]


async def test_tracker_cookies_win_over_the_cookieless_id(pipeline: Pipeline) -> None:
    now = datetime.now(UTC)
    await pipeline.visit(now, "/x", visitor_id="cookie-v", session_id="cookie-s")
    await pipeline.visit(now + timedelta(seconds=1), "/y")

    rows = await pipeline.rows()
    assert (rows[0]["visitor_id"], rows[0]["session_id"]) == ("cookie-v", "cookie-s")
    assert rows[1]["visitor_id"] != "cookie-v"


async def test_a_visit_across_midnight_stays_one_visitor_and_session(pipeline: Pipeline) -> None:
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    await pipeline.visit(midnight - timedelta(minutes=5), "/before")
    await pipeline.visit(midnight + timedelta(minutes=5), "/after")
    rows = await pipeline.rows()

    assert [r["pathname"] for r in rows] == ["/before", "/after"]
    assert rows[0]["visitor_id"] == rows[1]["visitor_id"]
    assert rows[0]["session_id"] == rows[1]["session_id"]


async def test_the_next_day_is_a_new_cookieless_visitor(pipeline: Pipeline) -> None:
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    await pipeline.visit(midnight - timedelta(hours=3), "/yesterday")
    await pipeline.visit(midnight + timedelta(hours=3), "/today")

    rows = await pipeline.rows()
    assert rows[0]["visitor_id"] != rows[1]["visitor_id"]  # the salt rotated and nothing bridged it
    assert rows[0]["session_id"] != rows[1]["session_id"]


@pytest.mark.parametrize("mode", [pytest.param("scaled", marks=pytest.mark.scaled)], indirect=True)
async def test_sessions_are_shared_by_every_worker(pipeline: Pipeline, settings: Settings) -> None:
    """Scaled mode: a visitor's next request may be processed by another worker; it continues the visit."""
    engine = sqlalchemy_config(settings).get_engine()
    assert pipeline.adapters.valkey is not None
    other = Processor(
        SiteDirectory(engine), MemoryDeduplicator(), ValkeySessionTracker(pipeline.adapters.valkey)
    )
    now = datetime.now(UTC)
    await pipeline.visit(now - timedelta(minutes=5), "/one")
    await pipeline.writer.flush()
    pipeline.writer.processor = other
    await pipeline.visit(now, "/two")
    rows = await pipeline.rows()
    await engine.dispose()

    assert [r["pathname"] for r in rows] == ["/one", "/two"]
    assert rows[0]["session_id"] == rows[1]["session_id"]


# --- the sessions table -------------------------------------------------------------------------

Visit = tuple[float, str, str, float]
"""(minutes from the start, path, event type, revenue in major units)."""


def _expected_sessions(visits: list[Visit]) -> list[dict[str, object]]:
    """What the sessions table must hold, worked out here from the 30-minute rule alone."""
    groups: list[list[Visit]] = []
    for visit in sorted(visits):
        if groups and (visit[0] - groups[-1][-1][0]) * 60 < 30 * 60:
            groups[-1].append(visit)
        else:
            groups.append([visit])
    expected = []
    for group in groups:
        pages = [path for _, path, kind, _ in group if kind == "pageview"]
        expected.append(
            {
                "pageviews": len(pages),
                "events": len(group),
                "entry_page": pages[0] if pages else "",
                "exit_page": pages[-1] if pages else "",
                "duration": int((group[-1][0] - group[0][0]) * 60),
                "is_bounce": int(len(group) == 1),
                "goals": sum(kind in ("goal", "purchase") for _, _, kind, _ in group),
                "revenue": round(sum(revenue for *_, revenue in group) * 100),
            }
        )
    return expected


async def _send(pipeline: Pipeline, base: datetime, visits: list[Visit]) -> None:
    for minutes, path, kind, revenue in visits:
        fields: dict[str, object] = {}
        if kind != "pageview":
            fields.update(event_type=kind, goal_name=f"{kind}-done")
        if revenue:
            fields.update(revenue=revenue, currency="USD")
        await pipeline.visit(base + timedelta(minutes=minutes), path, **fields)


async def test_the_sessions_table_holds_each_visit_as_it_happened(pipeline: Pipeline) -> None:
    visits: list[Visit] = [
        (0, "/", "pageview", 0),
        (2, "/pricing", "pageview", 0),
        (3, "/pricing", "goal", 0),
        (9, "/checkout", "pageview", 0),
        (9.5, "/checkout", "purchase", 49.5),
        (45, "/blog", "pageview", 0),  # 35.5 idle minutes: a new visit, a bounce
        (90, "/docs", "pageview", 0),
        (100, "/docs/api", "pageview", 0),
    ]
    await _send(pipeline, datetime.now(UTC) - timedelta(hours=2), visits)

    expected = _expected_sessions(visits)
    stored = await pipeline.sessions()
    assert [{key: row[key] for key in expected[0]} for row in stored] == expected
    events = await pipeline.rows()
    assert [row["session_id"] for row in stored] == list(dict.fromkeys(r["session_id"] for r in events))
    assert all(row["sign"] == 1 for row in stored)
    # Before any merge the raw rows, weighted by sign, give the same totals.
    assert await pipeline.session_totals() == {
        "visits": len(expected),
        "pageviews": sum(int(e["pageviews"]) for e in expected),  # type: ignore[call-overload]
        "events": len(visits),
        "bounces": sum(int(e["is_bounce"]) for e in expected),  # type: ignore[call-overload]
        "duration": sum(int(e["duration"]) for e in expected),  # type: ignore[call-overload]
    }


async def test_a_delayed_event_moves_the_visit_start_and_entry_page(pipeline: Pipeline) -> None:
    now = datetime.now(UTC)
    await pipeline.visit(now, "/second", utm_source="newsletter")
    # Sent now, but happened 3 minutes earlier (queued offline): the tracker's clock and sent_at.
    client_now = 1_700_000_000_000.0
    await pipeline.visit(
        now, "/first", timestamp=client_now - 180_000, sent_at=client_now, referrer="https://www.google.com/"
    )

    [session] = await pipeline.sessions()
    assert (session["entry_page"], session["exit_page"]) == ("/first", "/second")
    assert (session["pageviews"], session["duration"]) == (2, 180)
    assert session["referrer_source"] == "Google"  # where the visit really came from
    assert (await pipeline.session_totals())["visits"] == 1


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_open_visits_survive_a_restart(pipeline: Pipeline) -> None:
    now = datetime.now(UTC)
    await pipeline.visit(now - timedelta(minutes=10), "/a")
    await pipeline.visit(now - timedelta(minutes=9), "/b")
    await pipeline.writer.flush()
    # A new process: its tracker is empty until it reads the open visits back from ClickHouse.
    restarted = MemorySessionTracker()
    assert await restarted.recover(pipeline.adapters.event_store) >= 1
    pipeline.writer.processor.sessions = restarted
    await pipeline.visit(now, "/c")

    [session] = await pipeline.sessions()
    assert (session["pageviews"], session["entry_page"], session["exit_page"]) == (3, "/a", "/c")
    assert session["version"] == 2  # one write for the batch of /a and /b, one for /c
    assert len({r["session_id"] for r in await pipeline.rows()}) == 1
    assert (await pipeline.session_totals())["visits"] == 1


@pytest.mark.parametrize("mode", [pytest.param("scaled", marks=pytest.mark.scaled)], indirect=True)
async def test_concurrent_workers_never_lose_a_session_update(pipeline: Pipeline, settings: Settings) -> None:
    """Two workers process batches of the same visit at once: compare-and-set makes one re-plan."""
    engine = sqlalchemy_config(settings).get_engine()
    clients = [Valkey.from_url(str(settings.valkey_url)) for _ in range(2)]
    workers = [
        Processor(SiteDirectory(engine), MemoryDeduplicator(), ValkeySessionTracker(c)) for c in clients
    ]
    now = datetime.now(UTC).timestamp()
    for n in range(40):
        event = TrackEvent(
            website_id=pipeline.site_id,
            page_url=f"https://sessions.example/p{n}",
            visitor_id="v1",
            session_id="s1",
        )
        await pipeline.capture.accept([event], None, RequestInfo("81.2.69.142", CHROME_MAC, now + n / 1000))
    batch = pipeline.writer.spool.take(1000)
    assert batch is not None
    assert batch.count == 40
    pipeline.writer.spool.commit(batch)  # processed here by the two workers, not by the writer

    async def process(n: int) -> Processed:
        worker = workers[n % 2]

        async def persist(processed: Processed) -> bool:
            return await worker.sessions.save(processed.loaded, processed.changed)

        return await worker.run(batch.records[n * 2 : n * 2 + 2], persist)

    batches = await asyncio.gather(*(process(n) for n in range(20)))
    for n, processed in enumerate(batches):
        await insert_rows(pipeline.adapters.event_store, processed.blob, f"race:{pipeline.site_id}:{n}")
    for client in clients:
        await client.aclose()
    await engine.dispose()

    [session] = await pipeline.sessions()
    assert (session["session_id"], session["pageviews"], session["events"]) == ("s1", 40, 40)
    assert await pipeline.session_totals() == {
        "visits": 1,
        "pageviews": 40,
        "events": 40,
        "bounces": 0,
        "duration": 0,
    }


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_open_visits_in_memory_are_bounded_by_the_least_recently_active(pipeline: Pipeline) -> None:
    """Client-chosen visitor ids cannot grow the embedded session map past its bound."""
    pipeline.writer.processor.sessions = tracker = MemorySessionTracker(max_entries=50)
    now = datetime.now(UTC)
    await pipeline.visit(now - timedelta(minutes=20), "/kept", visitor_id="regular", session_id=None)
    for n in range(300):
        await pipeline.visit(now - timedelta(minutes=10), f"/flood/{n}", visitor_id=f"made-up-{n}")
        if n == 100:
            await pipeline.writer.flush()
            assert len(tracker) == 50
    await pipeline.visit(now, "/again", visitor_id="regular")
    rows = await pipeline.rows()

    assert len(tracker) == 50
    assert len(rows) == 302  # every event is stored
    regular = [row for row in rows if row["visitor_id"] == "regular"]
    # Dropped from memory by the flood: the regular visitor's next event starts a new session.
    assert len({row["session_id"] for row in regular}) == 2

"""Visitors and sessions over time: the 30-minute inactivity rule and the midnight salt bridge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from datafast.db.config import sqlalchemy_config
from datafast.domain.ingest.service import IngestService
from datafast.domain.ingest.sites import SiteDirectory
from datafast.domain.ingest.visitors import SaltBook, create_session_tracker
from datafast.settings import Settings
from tests.integration.ingest.conftest import Pipeline


async def test_a_new_session_starts_after_30_idle_minutes(pipeline: Pipeline) -> None:
    base = datetime.now(UTC).replace(second=0, microsecond=0)
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
async def test_sessions_are_shared_by_every_web_process(pipeline: Pipeline, settings: Settings) -> None:
    """Scaled mode: a visitor's next request may reach another process; it continues the session."""
    first = pipeline.service
    engine = sqlalchemy_config(settings).get_engine()
    other = IngestService(
        sites=SiteDirectory(engine),
        spool=first.spool,
        deduplicator=first.deduplicator,
        salts=SaltBook(engine),
        sessions=create_session_tracker(pipeline.adapters.valkey),
        geo=first.geo,
        pubsub=first.pubsub,
    )
    now = datetime.now(UTC)
    await pipeline.visit(now - timedelta(minutes=5), "/one")
    pipeline.service = other
    await pipeline.visit(now, "/two")
    await engine.dispose()

    rows = await pipeline.rows()
    assert [r["pathname"] for r in rows] == ["/one", "/two"]
    assert rows[0]["session_id"] == rows[1]["session_id"]

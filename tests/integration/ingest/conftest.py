"""Fixtures for the ingest tests: an ingest pipeline built from real parts, driven in-process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.config import sqlalchemy_config
from datafast.domain.accounts.services import UserService
from datafast.domain.ingest.capture import Capture, RequestInfo
from datafast.domain.ingest.capture.schemas import TrackEvent
from datafast.domain.ingest.capture.sites import SiteDirectory
from datafast.domain.ingest.capture.visitors import SaltBook
from datafast.domain.ingest.log.spool import FileSpool
from datafast.domain.ingest.log.writer import BatchWriter
from datafast.domain.ingest.process import Processor
from datafast.domain.ingest.process.dedupe import MemoryDeduplicator
from datafast.domain.ingest.process.sessions import create_session_tracker
from datafast.domain.sites.services import WebsiteService
from datafast.lib.adapters import Adapters
from datafast.lib.geo import create_geo_locator
from datafast.settings import Settings
from tests.helpers import CHROME_MAC


class Pipeline:
    """Capture into a real spool; processing (with the mode's session store) when rows are read."""

    def __init__(self, capture: Capture, writer: BatchWriter, adapters: Adapters, site_id: str) -> None:
        self.capture, self.writer, self.adapters, self.site_id = capture, writer, adapters, site_id

    async def visit(self, at: datetime, path: str = "/", **fields: object) -> None:
        event = TrackEvent(website_id=self.site_id, page_url=f"https://sessions.example{path}", **fields)  # type: ignore[arg-type]
        await self.capture.accept([event], None, RequestInfo("81.2.69.142", CHROME_MAC, at.timestamp()))

    async def rows(self) -> list[dict[str, object]]:
        await self.writer.flush()
        result = await self.adapters.event_store.query(
            "SELECT visitor_id, session_id, pathname FROM events"
            " WHERE website_id = {s:UUID} ORDER BY timestamp",
            parameters={"s": self.site_id},
        )
        return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]

    async def sessions(self) -> list[dict[str, Any]]:
        """The collapsed ``sessions`` rows of the site (what merges will leave), oldest first."""
        await self.writer.flush()
        result = await self.adapters.event_store.query(
            "SELECT * FROM sessions FINAL WHERE website_id = {s:UUID} ORDER BY started_at",
            parameters={"s": self.site_id},
        )
        return list(result.named_results())

    async def session_totals(self) -> dict[str, int]:
        """Sign-weighted sums over the raw, unmerged rows: how queries read the table."""
        await self.writer.flush()
        result = await self.adapters.event_store.query(
            "SELECT sum(sign) AS visits, sum(sign * pageviews) AS pageviews, sum(sign * events) AS events,"
            " sum(sign * is_bounce) AS bounces, sum(sign * duration) AS duration"
            " FROM sessions WHERE website_id = {s:UUID}",
            parameters={"s": self.site_id},
        )
        return {k: int(v) for k, v in next(result.named_results()).items()}


@pytest.fixture
async def pipeline(
    settings: Settings, adapters: Adapters, db_session: AsyncSession, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    owner = await UserService(session=db_session).create_user(
        f"s{uuid.uuid4().hex[:6]}@example.com", "password1"
    )
    site = await WebsiteService(session=db_session).create_site(
        owner, f"{uuid.uuid4().hex[:6]}.sessions.example"
    )
    site.hostnames = ["sessions.example"]
    await db_session.commit()
    engine = sqlalchemy_config(settings).get_engine()
    spool = FileSpool(tmp_path / "spool")
    sites = SiteDirectory(engine)
    processor = Processor(sites, MemoryDeduplicator(), create_session_tracker(adapters.valkey))
    writer = BatchWriter(spool, adapters.event_store, processor, pubsub=adapters.pubsub)
    capture = Capture(sites, spool, SaltBook(engine), create_geo_locator(None))
    yield Pipeline(capture, writer, adapters, str(site.id))
    await spool.close()
    await engine.dispose()

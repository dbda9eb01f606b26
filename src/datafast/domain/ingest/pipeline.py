"""Builds the ingest pipeline for one process: spool slot, batch writer, service."""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from datafast.domain.analytics.cache import ResultCache
from datafast.domain.ingest.dedupe import MemoryDeduplicator, ValkeyDeduplicator
from datafast.domain.ingest.service import IngestService
from datafast.domain.ingest.sessions import MemorySessionTracker, create_session_tracker
from datafast.domain.ingest.sites import SiteDirectory
from datafast.domain.ingest.spool import FileSpool
from datafast.domain.ingest.stream import StreamSpool
from datafast.domain.ingest.visitors import SaltBook
from datafast.domain.ingest.writer import BatchWriter
from datafast.lib.adapters import Adapters
from datafast.lib.geo import create_geo_locator
from datafast.lib.metrics import IngestMetrics
from datafast.log import get_logger

__all__ = ("IngestPipeline", "start_ingest")

log = get_logger(__name__)
MAX_SLOTS = 256


@dataclass(slots=True)
class IngestPipeline:
    """Embedded mode: a file spool drained by this process's writer. Scaled: a Valkey stream only."""

    service: IngestService
    metrics: IngestMetrics
    spool: FileSpool | StreamSpool
    writer: BatchWriter | None = None
    slot_lock: int | None = None

    async def depth(self) -> int:
        """Events (scaled: requests) spooled and not yet in ClickHouse."""
        return self.spool.depth if isinstance(self.spool, FileSpool) else await self.spool.depth()

    async def stop(self) -> None:
        if self.writer is not None:
            await self.writer.stop()
        await self.spool.close()
        if self.slot_lock is not None:
            os.close(self.slot_lock)


def _claim_slot(base: Path) -> tuple[Path, int]:
    """The first spool directory no other live process holds (a crashed one's is taken over)."""
    base.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        directory = base / f"{slot:03d}"
        directory.mkdir(exist_ok=True)
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return directory, fd
    raise RuntimeError(f"all {MAX_SLOTS} spool slots in {base} are in use")


async def start_ingest(adapters: Adapters, engine: AsyncEngine) -> IngestPipeline:
    settings = adapters.settings
    geo = create_geo_locator(settings.geoip_database)  # first: the likeliest to fail (a bad .mmdb)
    metrics = IngestMetrics()
    spool: FileSpool | StreamSpool
    if adapters.valkey is not None:
        # Web processes only append; `datafast worker` drains the stream into ClickHouse.
        spool, writer, lock = StreamSpool(adapters.valkey), None, None
    else:
        directory, lock = _claim_slot(settings.data_dir / "spool")
        spool = FileSpool(directory)
        writer = BatchWriter(
            spool,
            adapters.event_store,
            max_rows=settings.ingest_batch_rows,
            interval=settings.ingest_flush_interval,
            on_batch=metrics.observe_batch,
            # New data drops the sites' cached Stats API results.
            on_written=ResultCache(adapters.cache, settings.stats_cache_ttl).invalidate,
        )
        # Whatever a crash left in the spool goes to ClickHouse before new events.
        await writer.flush()
        writer.start()
    deduplicator = (
        ValkeyDeduplicator(adapters.valkey) if adapters.valkey is not None else MemoryDeduplicator()
    )
    sessions = create_session_tracker(adapters.valkey)
    if isinstance(sessions, MemorySessionTracker):
        # Visits still open when the process stopped go on where they were (Valkey keeps its own).
        try:
            recovered = await sessions.recover(adapters.event_store)
        except Exception as exc:  # e.g. not migrated yet: /readyz says so; visits start afresh
            log.warning("open sessions not recovered", error=str(exc)[:300])
        else:
            log.info("open sessions recovered", sessions=recovered)
    service = IngestService(
        sites=SiteDirectory(engine),
        spool=spool,
        deduplicator=deduplicator,
        salts=SaltBook(engine),
        sessions=sessions,
        geo=geo,
        pubsub=adapters.pubsub,
        metrics=metrics,
    )
    return IngestPipeline(service, metrics, spool, writer, lock)

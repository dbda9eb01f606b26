"""Builds the ingest pipeline for one process: capture, its durable log, and (embedded) processing."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from valkey.asyncio import Valkey

from datafast.domain.ingest.capture import Capture
from datafast.domain.ingest.capture.sites import SiteDirectory
from datafast.domain.ingest.capture.visitors import SaltBook
from datafast.domain.ingest.jobs import LEASE, StreamProcessing
from datafast.domain.ingest.log.spool import FileSpool
from datafast.domain.ingest.log.stream import StreamDrainer, StreamSpool
from datafast.domain.ingest.log.writer import BatchWriter, IdentifiedHook, InsertedHook, WrittenHook
from datafast.domain.ingest.process import Processor
from datafast.domain.ingest.process.dedupe import MemoryDeduplicator, ValkeyDeduplicator
from datafast.domain.ingest.process.sessions import MemorySessionTracker, ValkeySessionTracker
from datafast.lib.adapters import Adapters
from datafast.lib.geo import create_geo_locator
from datafast.lib.metrics import IngestMetrics
from datafast.log import get_logger

__all__ = ("IngestPipeline", "create_stream_processing", "start_ingest")

log = get_logger(__name__)
MAX_SLOTS = 256


@dataclass(slots=True)
class IngestPipeline:
    """Embedded mode: a file spool processed by this process's writer. Scaled: a Valkey stream only."""

    capture: Capture
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


async def start_ingest(
    adapters: Adapters,
    engine: AsyncEngine,
    on_written: WrittenHook,
    on_identified: IdentifiedHook | None = None,
    on_inserted: InsertedHook | None = None,
) -> IngestPipeline:
    """``on_written`` is told which sites got new rows (the Stats API drops their cached results),
    ``on_identified`` which email hashes were identified (payments waiting for them get linked),
    ``on_inserted`` each batch's rows once inserted (the money's credited visits are refreshed)."""
    settings = adapters.settings
    geo = create_geo_locator(settings.geoip_database)  # first: the likeliest to fail (a bad .mmdb)
    metrics = IngestMetrics()
    sites = SiteDirectory(engine)
    spool: FileSpool | StreamSpool
    writer = lock = None
    backlog = settings.ingest_backlog_mb * 1024 * 1024
    if adapters.valkey is not None:
        # Web processes only append; `datafast worker` processes the stream into ClickHouse.
        spool = StreamSpool(adapters.valkey, settings.ingest_partitions, max_bytes=backlog)
        await spool.start()
    else:
        directory, lock = _claim_slot(settings.data_dir / "spool")
        spool = FileSpool(directory, max_bytes=backlog)
        sessions = MemorySessionTracker(settings.ingest_session_memory)
        processor = Processor(sites, MemoryDeduplicator(), sessions, metrics)
        writer = BatchWriter(
            spool,
            adapters.event_store,
            processor,
            pubsub=adapters.pubsub,
            max_rows=settings.ingest_batch_rows,
            interval=settings.ingest_flush_interval,
            on_batch=metrics.observe_batch,
            on_written=on_written,
            on_identified=on_identified,
            on_inserted=on_inserted,
        )
        try:
            # A batch processed before a crash goes in first; then the visits still open come
            # back from ClickHouse (that batch's included), then the rest of the spool follows.
            await writer.recover()
            recovered = await sessions.recover(adapters.event_store)
            await writer.flush()
        except Exception as exc:  # e.g. not migrated yet: /readyz says so; visits start afresh
            log.warning("spool or open sessions not recovered", error=str(exc)[:300])
        else:
            log.info("open sessions recovered", sessions=recovered)
        writer.start()
    capture = Capture(sites, spool, SaltBook(engine), geo, metrics)
    return IngestPipeline(capture, metrics, spool, writer, lock)


def create_stream_processing(
    adapters: Adapters,
    engine: AsyncEngine,
    *,
    client: Valkey | None = None,
    on_written: WrittenHook | None = None,
    on_batch: Callable[[int, float], None] | None = None,
    on_identified: IdentifiedHook | None = None,
    on_inserted: InsertedHook | None = None,
    lease: float = LEASE,
    **options: Any,
) -> StreamProcessing:
    """Scaled mode's processing, as each ``datafast worker`` runs it: a drainer per partition it
    holds (``options``: the drainers')."""
    client = client or adapters.valkey
    if client is None:
        raise RuntimeError("the ingest stream needs VALKEY_URL")
    settings = adapters.settings
    sites = SiteDirectory(engine)  # one cache of sites for every partition
    defaults: dict[str, Any] = {
        "max_rows": settings.ingest_batch_rows,
        "interval": settings.ingest_flush_interval,
    }

    def drainer(partition: int) -> StreamDrainer:
        assert client is not None
        dedupe, sessions = ValkeyDeduplicator(client), ValkeySessionTracker(client)
        return StreamDrainer(
            client,
            adapters.event_store,
            Processor(sites, dedupe, sessions, IngestMetrics()),
            partition=partition,
            pubsub=adapters.pubsub,
            on_written=on_written,
            on_batch=on_batch,
            on_identified=on_identified,
            on_inserted=on_inserted,
            **(defaults | options),
        )

    return StreamProcessing(client, drainer, settings.ingest_partitions, settings.ingest_heartbeat, lease)

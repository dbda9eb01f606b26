"""The batch writer: spool → ClickHouse every ``max_rows`` events or ``interval`` seconds."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from datafast.domain.ingest.rows import EVENT_COLUMNS
from datafast.domain.ingest.spool import Batch, FileSpool
from datafast.lib.eventstore import EventStore
from datafast.log import get_logger

__all__ = ("BatchWriter",)

log = get_logger(__name__)


class BatchWriter:
    def __init__(
        self,
        spool: FileSpool,
        store: EventStore,
        *,
        max_rows: int = 1000,
        interval: float = 1.0,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self.spool = spool
        self.store = store
        self.max_rows = max_rows
        self.interval = interval
        self._on_batch = on_batch
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        last = time.monotonic()
        backoff = 0.5
        while True:
            await asyncio.sleep(0.02)
            if self.spool.depth < self.max_rows and time.monotonic() - last < self.interval:
                continue
            try:
                await self.flush()
                backoff = 0.5
            except Exception as exc:  # ClickHouse down: keep the events spooled and try again
                log.warning(
                    "insert failed; events stay in the spool",
                    error=str(exc)[:300],
                    spooled=self.spool.depth,
                    retry_in=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)
            last = time.monotonic()

    async def flush(self) -> int:
        """Insert everything spooled now; returns the number of events written."""
        written = 0
        async with self._lock:
            batch = self.spool.pending_batch() or self.spool.take(self.max_rows)
            while batch is not None:
                await self._insert(batch)
                written += batch.count
                batch = self.spool.take(self.max_rows)
        return written

    async def _insert(self, batch: Batch) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.spool.announce, batch)
        started = time.perf_counter()
        await self.store.insert_raw(
            "events",
            EVENT_COLUMNS,
            batch.rows,
            "JSONEachRow",
            dedup_token=batch.token(self.spool.state.spool_id),
        )
        await loop.run_in_executor(None, self.spool.commit, batch)
        if self._on_batch is not None:
            self._on_batch(batch.count, time.perf_counter() - started)

    async def stop(self) -> None:
        """Stop the loop and write what is left (a failure leaves it in the spool for next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush()
        except Exception as exc:
            log.warning("final insert failed; the spool keeps the events", error=str(exc)[:300])

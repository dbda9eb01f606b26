"""Embedded mode's processing loop: spool → processing → ClickHouse, every ``max_rows`` requests
or ``interval`` seconds, in this process beside capture (chDB inserts and merges run in its own
threads, outside the GIL)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping

from datafast.domain.ingest.log.spool import Batch, FileSpool
from datafast.domain.ingest.process import Processed, Processor
from datafast.domain.ingest.process.rows import EVENT_COLUMNS, SCROLL_COLUMNS, SCROLL_TAG, identified_in
from datafast.domain.ingest.process.sessions import SESSION_COLUMNS, SESSION_TAG
from datafast.lib.eventstore import EventStore
from datafast.lib.pubsub import PubSub
from datafast.log import get_logger

__all__ = ("BatchWriter", "IdentifiedHook", "InsertedHook", "WrittenHook", "announce_written", "insert_rows")

log = get_logger(__name__)
_WEBSITE_ID = re.compile(rb'"website_id":"([0-9a-fA-F-]{36})"')
LINGER = 0.05
"""A batch closes once no request came for this long (or ``max_rows`` wait, or ``interval`` passed),
in the spool and the stream alike: a lone visit reaches the live feed at once, a busy site still
gets batches."""
WrittenHook = Callable[[Iterable[str]], Awaitable[None]]
"""Called with the website ids of rows just written (the Stats API drops their cached results)."""
IdentifiedHook = Callable[[Mapping[str, set[str]]], Awaitable[object]]
"""Called with the email hashes of ``identify`` events just written, by site (late payment links)."""
InsertedHook = Callable[[bytes], Awaitable[object]]
"""Called with the rows of a batch just inserted, before it counts as written (the money's credited
visits are refreshed from them); a failure leaves the batch to be inserted and announced again."""


async def announce_identified(on_identified: IdentifiedHook | None, blob: bytes) -> None:
    """Tell ``on_identified`` the email hashes of the ``identify`` events in rows just written."""
    if on_identified is None or not (identified := identified_in(blob)):
        return
    try:
        await on_identified(identified)
    except Exception as exc:  # the events are written: linking payments is retried by the next identify
        log.warning("could not link payments to identified visitors", error=str(exc)[:300])


async def announce_written(on_written: WrittenHook | None, blob: bytes) -> None:
    if on_written is None:
        return
    try:
        await on_written({m.decode() for m in _WEBSITE_ID.findall(blob)})
    except Exception as exc:  # the data is written: a cache hiccup must not replay the batch
        log.warning("could not announce written sites", error=str(exc)[:300])


async def publish_realtime(pubsub: PubSub | None, processed: Processed) -> None:
    """Send a durable batch's events to the sites' live feeds (one message per site)."""
    if pubsub is None:
        return
    for website_id, message in processed.realtime.items():
        try:
            await pubsub.publish(f"site:{website_id}", message)
        except Exception as exc:  # durable: a live feed hiccup must not replay the batch
            log.warning("could not publish live events", error=str(exc)[:300])


class BatchWriter:
    def __init__(
        self,
        spool: FileSpool,
        store: EventStore,
        processor: Processor,
        *,
        pubsub: PubSub | None = None,
        max_rows: int = 1000,
        interval: float = 1.0,
        on_batch: Callable[[int, float], None] | None = None,
        on_written: WrittenHook | None = None,
        on_identified: IdentifiedHook | None = None,
        on_inserted: InsertedHook | None = None,
    ) -> None:
        self.spool = spool
        self._on_identified = on_identified
        self._on_inserted = on_inserted
        self.store = store
        self.processor = processor
        self.pubsub = pubsub
        self.max_rows = max_rows
        self.interval = interval
        self._on_batch = on_batch
        self._on_written = on_written
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        last = time.monotonic()
        backoff = 0.5
        while not await self._stopped_within(0.02):
            now = time.monotonic()
            quiet = self.spool.depth and now - self.spool.last_append >= LINGER
            if self.spool.depth < self.max_rows and now - last < self.interval and not quiet:
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
                await self._stopped_within(backoff)
                backoff = min(backoff * 2, 30)
            last = time.monotonic()

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def flush(self) -> int:
        """Process and insert everything spooled now; returns the number of events written."""
        written = await self.recover()
        async with self._lock:
            while (batch := self.spool.take(self.max_rows)) is not None:
                processed = await self.processor.run(batch.records, functools.partial(self._persist, batch))
                # Durable from here: live feeds need not wait for the insert.
                await publish_realtime(self.pubsub, processed)
                written += await self._insert(batch, processed.blob)
        return written

    async def recover(self) -> int:
        """Insert the batch announced before a crash or a failed insert (its rows, same token)."""
        async with self._lock:
            pending = self.spool.pending_batch()
            if pending is None:
                return 0
            batch, rows = pending
            return await self._insert(batch, rows)

    async def _persist(self, batch: Batch, processed: Processed) -> bool:
        """The processed rows on disk, announced, then the new session states kept in memory."""
        await asyncio.get_running_loop().run_in_executor(None, self.spool.announce, batch, processed.blob)
        if not await self.processor.sessions.save(processed.loaded, processed.changed):
            return False
        await self.processor.deduplicator.mark(processed.keys)
        return True

    async def _insert(self, batch: Batch, rows: bytes) -> int:
        started = time.perf_counter()
        with self.store.ingesting():  # not behind the dashboard's reads, nor the hooks' queries
            events = await insert_rows(self.store, rows, batch.token(self.spool.state.spool_id))
            if self._on_inserted is not None:
                await self._on_inserted(rows)
            await announce_identified(self._on_identified, rows)  # a replayed batch's too
            await announce_written(self._on_written, rows)
        if self._on_batch is not None:  # before the commit empties the spool: metrics never lag it
            self._on_batch(events, time.perf_counter() - started)
        await asyncio.get_running_loop().run_in_executor(None, self.spool.commit, batch)
        return events

    async def stop(self) -> None:
        """Stop the loop and write what is left (a failure leaves it in the spool for next start).

        The loop is asked to stop, not cancelled: a cancelled insert would leave its spool
        checkpoint write running in a thread while the final flush starts another.
        """
        self._stopping.set()
        if self._task is not None:
            await self._task
        try:
            await self.flush()
        except Exception as exc:
            log.warning("final insert failed; the spool keeps the events", error=str(exc)[:300])


async def insert_rows(store: EventStore, blob: bytes, token: str) -> int:
    """Insert spooled records into ``events``, ``sessions`` and ``page_scrolls``; returns the number
    of events.

    Event rows are JSON lines; session and scroll rows are JSON lines after a one-byte tag. Each
    table has its own token: after a crash between the inserts, the replay writes the tables that
    missed them and skips the rows that already made it.
    """
    lines = blob.split(b"\n")
    events = [line for line in lines if line[:1] == b"{"]
    sessions = b"".join(line[1:] + b"\n" for line in lines if line[:1] == SESSION_TAG)
    if events:
        block = b"\n".join(events) + b"\n"
        await store.insert_raw("events", EVENT_COLUMNS, block, "JSONEachRow", dedup_token=token)
    if sessions:
        await store.insert_raw(
            "sessions", SESSION_COLUMNS, sessions, "JSONEachRow", dedup_token=token + ":sessions"
        )
    scrolls = b"".join(line[1:] + b"\n" for line in lines if line[:1] == SCROLL_TAG)
    if scrolls:
        await store.insert_raw(
            "page_scrolls", SCROLL_COLUMNS, scrolls, "JSONEachRow", dedup_token=token + ":scrolls"
        )
    return len(events)

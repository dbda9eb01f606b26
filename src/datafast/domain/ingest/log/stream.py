"""Scaled mode's durable log: a Valkey stream that web processes append to and workers process.

Web processes only ``XADD`` each captured request (one round trip) before answering 202. Every
``datafast worker`` runs a :class:`StreamDrainer` in one consumer group, so each entry goes to
one worker; several may run at once.

Exactly once into ClickHouse: a drainer processes a batch of entries (de-duplication, sessions,
rows) and then, in one atomic step, saves the batch's session states and *announces* the batch —
its token, entry ids and processed rows, in Valkey hashes — before inserting the rows with that
token as ``insert_deduplication_token``; then it acknowledges and deletes the entries and the
announcement in one transaction. When a worker dies mid-batch its entries stay pending; after
``claim_idle`` seconds another worker claims them and inserts an announced batch's rows again
with the same token (ClickHouse writes nothing twice, and the batch is never applied to the
sessions twice) or, if the batch was never announced, processes it as new. How durable an
acknowledged event is depends on Valkey's persistence: run it with ``appendonly yes`` (the
compose file and Helm chart do).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from valkey.asyncio import Valkey
from valkey.exceptions import ResponseError

from datafast.domain.ingest.log.writer import (
    LINGER,
    IdentifiedHook,
    WrittenHook,
    announce_identified,
    announce_written,
    insert_rows,
    publish_realtime,
)
from datafast.domain.ingest.process import Processed, Processor
from datafast.domain.ingest.process.dedupe import ValkeyDeduplicator
from datafast.domain.ingest.process.sessions import Announcement, ValkeySessionTracker
from datafast.lib.eventstore import EventStore
from datafast.lib.pubsub import PubSub
from datafast.log import get_logger

log = get_logger(__name__)

STREAM = "datafast:ingest"
GROUP = "writers"
_FIELD = b"r"
_STATS = "datafast:ingest:stats"
_LATENCIES = "datafast:ingest:latencies"

Entry = tuple[bytes, bytes]
"""(stream entry id, the request's records)."""


class StreamSpool:
    """What a web process appends to: one stream entry per captured request.

    ``overloaded`` answers from the stream's size as last measured (refreshed in the background
    at most once a second), so an append stays one round trip.
    """

    def __init__(self, client: Valkey, stream: str = STREAM, max_bytes: int = 1024 * 1024 * 1024) -> None:
        self.client = client
        self.stream = stream
        self.max_bytes = max_bytes
        self._checked = 0.0
        self._refreshing: asyncio.Task[None] | None = None
        self._overloaded: str | None = None

    async def start(self) -> None:
        await self._refresh()

    async def append(self, records: list[bytes]) -> None:
        for record in records:
            await self.client.xadd(self.stream, {_FIELD: record})

    def overloaded(self) -> str | None:
        if time.monotonic() - self._checked > 1.0 and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self._refresh())
        return self._overloaded

    async def _refresh(self) -> None:
        self._checked = time.monotonic()
        try:
            size = await self.client.memory_usage(self.stream, samples=5) or 0
        except Exception as exc:  # Valkey away: the appends will say so themselves
            log.warning("could not measure the ingest stream", error=str(exc)[:300])
            return
        waiting = f"{size // (1024 * 1024)} MB of events are waiting for the workers"
        self._overloaded = waiting if size >= self.max_bytes else None

    async def depth(self) -> int:
        """Requests appended and not yet in ClickHouse (entries are deleted once inserted)."""
        length: int = await self.client.xlen(self.stream)
        return length

    async def close(self) -> None:
        return None


class StreamDrainer:
    """One worker's consumer: up to ``max_rows`` requests or ``interval`` seconds a batch, processed,
    inserted, acknowledged."""

    def __init__(
        self,
        client: Valkey,
        store: EventStore,
        processor: Processor,
        *,
        pubsub: PubSub | None = None,
        stream: str = STREAM,
        max_rows: int = 1000,
        interval: float = 1.0,
        claim_idle: float = 30.0,
        consumer: str | None = None,
        on_written: WrittenHook | None = None,
        on_batch: Callable[[int, float], None] | None = None,
        on_identified: IdentifiedHook | None = None,
    ) -> None:
        self.client = client
        self.on_identified = on_identified
        self.on_batch = on_batch
        """Told (rows, seconds) of each batch written, e.g. for this process's metrics."""
        self.store = store
        self.processor = processor
        self.pubsub = pubsub
        if not isinstance(processor.sessions, ValkeySessionTracker):
            raise TypeError("a stream drainer keeps sessions in Valkey")
        self.sessions: ValkeySessionTracker = processor.sessions
        if not isinstance(processor.deduplicator, ValkeyDeduplicator):
            raise TypeError("a stream drainer keeps de-duplication keys in Valkey")
        self.deduplicator: ValkeyDeduplicator = processor.deduplicator
        self.stream = stream
        self.batches = stream + ":batches"
        self.batch_rows = stream + ":batch-rows"
        self.max_rows = max_rows
        self.interval = interval
        self.claim_idle = claim_idle
        self.on_written = on_written
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def ensure_group(self) -> None:
        try:
            # From the start of the stream: entries added before any worker existed count too.
            await self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Finish the batch in hand; what is unread stays in the stream for the next worker."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        await self.ensure_group()
        backoff = 0.5
        next_recovery = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_recovery:
                    await self.recover()
                    next_recovery = time.monotonic() + self.claim_idle / 2
                await self.drain_once(block=True)
                backoff = 0.5
            except Exception as exc:  # Valkey or ClickHouse down: entries stay pending; retry
                log.warning("stream drain failed; entries stay in the stream", error=str(exc)[:300])
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)

    async def drain_once(self, *, block: bool = False) -> int:
        """Read new entries (up to ``max_rows`` requests or ``interval`` s) and store them; returns events."""
        entries = await self.read(block=block)
        if not entries:
            return 0
        return await self._process(entries)

    async def read(self, *, block: bool = False) -> list[Entry]:
        """New entries for this consumer; they stay pending (owned by it) until written."""
        entries: list[Entry] = []
        rows = 0
        deadline = time.monotonic() + self.interval
        while rows < self.max_rows:
            wait = deadline - time.monotonic()
            if block and wait <= 0:
                break
            if entries:  # the batch closes once entries stop coming for a moment
                wait = min(wait, LINGER)
            response = await self.client.xreadgroup(
                GROUP,
                self.consumer,
                {self.stream: ">"},
                count=self.max_rows - rows,
                block=max(1, int(wait * 1000)) if block else None,
            )
            fresh = _entries(response)
            if not fresh:
                break
            entries += fresh
            rows += len(fresh)
        return entries

    async def _process(self, entries: Sequence[Entry], suffix: str = "") -> int:
        ids = [entry_id for entry_id, _ in entries]
        token = f"stream:{ids[0].decode()}:{ids[-1].decode()}:{len(ids)}{suffix}"
        processed = await self.processor.run(
            [blob for _, blob in entries], functools.partial(self._persist, token, ids)
        )
        # Durable from here (announced with its rows): live feeds need not wait for the insert.
        await publish_realtime(self.pubsub, processed)
        return await self._write(token, ids, processed.blob, processed)

    async def _persist(self, token: str, ids: list[bytes], processed: Processed) -> bool:
        announcement = Announcement(
            batches=self.batches,
            batch_rows=self.batch_rows,
            token=token,
            ids=b",".join(ids),
            rows=processed.blob,
            dedupe_prefix=self.deduplicator.prefix,
            dedupe_keys=processed.keys,
            dedupe_ttl=self.deduplicator.window,
        )
        return await self.sessions.save_and_announce(processed.loaded, processed.changed, announcement)

    async def _write(
        self, token: str, ids: list[bytes], rows: bytes, processed: Processed | None = None
    ) -> int:
        started = time.perf_counter()
        count = await insert_rows(self.store, rows, token)
        if processed is not None:
            await announce_identified(self.on_identified, processed)
        await announce_written(self.on_written, rows)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.hdel(self.batches, token)
            pipe.hdel(self.batch_rows, token)
            pipe.hincrby(_STATS, "batches", 1)
            pipe.hincrby(_STATS, "rows", count)
            pipe.lpush(_LATENCIES, f"{time.perf_counter() - started:.6f}")
            pipe.ltrim(_LATENCIES, 0, 999)
            await pipe.execute()
        if self.on_batch is not None:
            self.on_batch(count, time.perf_counter() - started)
        return count

    async def recover(self) -> int:
        """Take over what dead workers left: announced batches first (same token), then the rest."""
        recovered = 0
        announced: dict[bytes, bytes] = await self.client.execute_command(  # type: ignore[no-untyped-call]
            "HGETALL", self.batches
        )
        claimed_ids: set[bytes] = set()
        for announced_token, joined in announced.items():
            ids: list[Any] = list(joined.split(b","))
            claimed_ids.update(ids)
            entries = _entries_of(
                await self.client.xclaim(self.stream, GROUP, self.consumer, int(self.claim_idle * 1000), ids)
            )
            if not entries:
                continue  # its worker is alive (or the batch is done)
            rows: bytes | None = await self.client.execute_command(  # type: ignore[no-untyped-call]
                "HGET", self.batch_rows, announced_token
            )
            if rows is None:  # pragma: no cover - announced in one step with its rows
                log.warning("announced batch without rows", token=announced_token.decode())
                continue
            recovered += await self._write(announced_token.decode(), ids, rows)
        pending = await self.client.xpending_range(
            self.stream, GROUP, min="-", max="+", count=10_000, idle=int(self.claim_idle * 1000)
        )
        orphans: list[Any] = [p["message_id"] for p in pending if p["message_id"] not in claimed_ids]
        if orphans:
            entries = _entries_of(
                await self.client.xclaim(
                    self.stream, GROUP, self.consumer, int(self.claim_idle * 1000), orphans
                )
            )
            if entries:
                recovered += await self._process(entries, ":claimed")
        if recovered:
            log.info("recovered events left by a stopped worker", events=recovered)
        return recovered


def _entries(response: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None) -> list[Entry]:
    if not response:
        return []
    return _entries_of(response[0][1])


def _entries_of(raw: Sequence[tuple[bytes, dict[bytes, bytes] | None]]) -> list[Entry]:
    # An entry deleted meanwhile comes back without fields: nothing to insert for it.
    return [(entry_id, fields[_FIELD]) for entry_id, fields in raw if fields]


async def batch_stats(client: Valkey) -> tuple[int, int, list[float]]:
    """(batches, rows, recent insert latencies) recorded by every worker's drainer."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(_STATS)
        pipe.lrange(_LATENCIES, 0, -1)
        stats, latencies = await pipe.execute()
    return int(stats.get(b"batches", 0)), int(stats.get(b"rows", 0)), [float(x) for x in latencies]

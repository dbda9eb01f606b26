"""Scaled mode's durable log: Valkey streams, one per partition of the sites, that web processes
append to and ``datafast worker`` processes drain as SAQ jobs.

Partitions: a site's events always go to the same stream (``crc32(website id) mod
INGEST_PARTITIONS``; a request mixing sites goes whole to its first site's), one pipelined round
trip shared by the requests appending at the same moment. Each partition is processed in one
place at a time: by the SAQ job ``ingest.drain`` keyed on the partition (SAQ keeps one
incomplete job per key), which holds the partition for a one-minute lease and is queued
again when it ends (see :mod:`datafast.domain.ingest.jobs`), so partitions spread over the
workers and move when one stops.

Exactly once into ClickHouse: the holder processes a batch of entries (de-duplication, sessions,
rows) and then, in one atomic step, saves the batch's session states and *announces* the batch —
its token, entry ids and processed rows, in Valkey hashes — before inserting the rows with that
token as ``insert_deduplication_token``; then it acknowledges and deletes the entries and the
announcement in one transaction. Entries are read under one consumer name per partition, so what
a holder read and never finished stays pending under that name. When a worker dies its job
stops sending heartbeats; SAQ's sweep retries the job, and the next holder first *resumes*: an
announced batch's rows are inserted again under the same token (ClickHouse writes nothing twice,
and the batch is never applied to the sessions twice); pending entries never announced are
processed as new. How durable an acknowledged event is depends on Valkey's persistence: run it
with ``appendonly yes`` (the compose file and Helm chart do).
"""

from __future__ import annotations

import asyncio
import functools
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence

from valkey.asyncio import Valkey
from valkey.exceptions import ConnectionError as ValkeyConnectionError
from valkey.exceptions import ResponseError

from datafast.domain.ingest.log.writer import (
    LINGER,
    IdentifiedHook,
    InsertedHook,
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

STREAM_PREFIX = "datafast:ingest:"
GROUP = "processors"
CONSUMER = "holder"
"""Every holder of a partition reads under this name: a dead holder's entries stay pending for the next."""
_FIELD = b"r"
READ_CHUNK = 256
"""Entries read at a time: a batch's size is checked between reads."""
_STATS = "datafast:ingest-stats"
_LATENCIES = "datafast:ingest-latencies"

Entry = tuple[bytes, bytes]
"""(stream entry id, the request's records)."""


def partition_of(website_id: str, partitions: int) -> int:
    """The partition a site's events go to: the same in every process and across restarts."""
    return zlib.crc32(website_id.encode()) % partitions


def stream_name(partition: int) -> str:
    return f"{STREAM_PREFIX}{partition}"


async def leftover_partitions(client: Valkey, partitions: int) -> list[int]:
    """Partition streams numbered ``partitions`` or more that still hold entries (after
    ``INGEST_PARTITIONS`` was lowered): a worker drains those too, so nothing appended is
    stranded. One ``SCAN`` of the keyspace: run it when a worker starts, not per request."""
    found: set[int] = set()
    async for key in client.scan_iter(match=STREAM_PREFIX + "*", count=1000, _type="stream"):
        suffix = key.decode().removeprefix(STREAM_PREFIX)
        if suffix.isdigit() and int(suffix) >= partitions and await client.xlen(key):
            found.add(int(suffix))
    return sorted(found)


async def backlog(client: Valkey, partitions: int) -> int:
    """Requests appended to the partitions and not yet in ClickHouse (entries are deleted once
    inserted, so this counts read-but-unfinished entries too)."""
    async with client.pipeline(transaction=False) as pipe:
        for partition in range(partitions):
            pipe.xlen(stream_name(partition))
        return sum(int(n) for n in await pipe.execute())


class StreamSpool:
    """What a web process appends to: one stream entry per captured request.

    Requests that append at the same moment share a round trip (a group commit, as the embedded
    spool shares an fsync): the first one's append starts a flush on the next turn of the event
    loop, which sends every entry waiting by then in one pipeline and answers each request with
    its own entry's result, so one failed entry fails only its request. ``overloaded`` answers
    from the streams' size as last measured (refreshed in the background at most once a second),
    so a request costs no round trip of its own.
    """

    def __init__(self, client: Valkey, partitions: int = 1, max_bytes: int = 1024 * 1024 * 1024) -> None:
        self.client = client
        self.partitions = partitions
        self.max_bytes = max_bytes
        self._checked = 0.0
        self._refreshing: asyncio.Task[None] | None = None
        self._overloaded: str | None = None
        self._waiting: list[tuple[str, bytes, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.round_trips = 0
        """Pipelines sent for single-entry appends (fewer than the appends when they come at once)."""

    async def start(self) -> None:
        await self._refresh()

    async def append(self, records: Sequence[tuple[str, bytes]]) -> None:
        """``records``: (website id, record) pairs, appended all or none in one round trip."""
        if len(records) == 1:  # capture's case: one entry per request
            website_id, record = records[0]
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.append((stream_name(partition_of(website_id, self.partitions)), record, future))
            if self._flushing is None:
                self._flushing = asyncio.create_task(self._flush())
            await future
            return
        async with self.client.pipeline(transaction=True) as pipe:
            for website_id, record in records:
                pipe.xadd(stream_name(partition_of(website_id, self.partitions)), {_FIELD: record})
            await pipe.execute()

    async def _flush(self) -> None:
        """Send what is waiting, one pipeline at a time, until nothing is."""
        group: list[tuple[str, bytes, asyncio.Future[None]]] = []
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                self.round_trips += 1
                try:
                    async with self.client.pipeline(transaction=False) as pipe:
                        for stream, record, _ in group:
                            pipe.xadd(stream, {_FIELD: record})
                        results = await pipe.execute(raise_on_error=False)
                except Exception as exc:  # Valkey away: no request of the group is acknowledged
                    results = [exc] * len(group)
                for (_, _, future), result in zip(group, results, strict=True):
                    if future.done():  # its request went away meanwhile
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(None)
        except asyncio.CancelledError:  # the process is stopping: no waiting request is acknowledged
            for _, _, future in [*group, *self._waiting]:
                if not future.done():
                    future.set_exception(ConnectionError("the ingest stream append was cancelled"))
            self._waiting = []
            raise
        finally:
            self._flushing = None

    def overloaded(self) -> str | None:
        if time.monotonic() - self._checked > 1.0 and (self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self._refresh())
        return self._overloaded

    async def _refresh(self) -> None:
        self._checked = time.monotonic()
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for partition in range(self.partitions):
                    pipe.memory_usage(stream_name(partition), samples=5)
                size = sum(int(n or 0) for n in await pipe.execute())
        except Exception as exc:  # Valkey away: the appends will say so themselves
            log.warning("could not measure the ingest streams", error=str(exc)[:300])
            return
        waiting = f"{size // (1024 * 1024)} MB of events are waiting for the workers"
        self._overloaded = waiting if size >= self.max_bytes else None

    async def depth(self) -> int:
        """Requests appended and not yet in ClickHouse."""
        return await backlog(self.client, self.partitions)

    async def close(self) -> None:
        return None


class StreamDrainer:
    """Processes one partition's stream: up to ``max_rows`` requests (``max_bytes`` of them) or
    ``interval`` seconds a batch, processed, announced, inserted, acknowledged. One holder at a
    time (the partition's SAQ job); :meth:`resume` first finishes what the previous holder left."""

    def __init__(
        self,
        client: Valkey,
        store: EventStore,
        processor: Processor,
        *,
        partition: int = 0,
        pubsub: PubSub | None = None,
        max_rows: int = 5000,
        max_bytes: int = 4 * 1024 * 1024,
        interval: float = 1.0,
        on_written: WrittenHook | None = None,
        on_batch: Callable[[int, float], None] | None = None,
        on_identified: IdentifiedHook | None = None,
        on_inserted: InsertedHook | None = None,
    ) -> None:
        self.client = client
        self.on_identified = on_identified
        self.on_inserted = on_inserted
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
        self.partition = partition
        self.stream = stream_name(partition)
        self.batches = self.stream + ":batches"
        self.batch_rows = self.stream + ":batch-rows"
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        """A batch also closes once its requests reach this size: requests of a hundred events
        each make batches of a few hundred requests, not ``max_rows`` (the worker's memory)."""
        self.interval = interval
        self.on_written = on_written

    async def ensure_group(self) -> None:
        try:
            # From the start of the stream: entries added before any worker existed count too.
            await self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def hold(
        self,
        seconds: float,
        *,
        heartbeat: Callable[[], Awaitable[object]] | None = None,
        stopping: Callable[[], bool] | None = None,
    ) -> int:
        """Hold the partition for ``seconds`` (or until ``stopping()``): resume what was left,
        then process new entries as they come; ``heartbeat`` is awaited after every read.
        Returns the events written. While Valkey is unreachable the holder waits and tries again;
        any other error (ClickHouse away) propagates with the entries left pending, and SAQ
        retries the job."""
        deadline = time.monotonic() + seconds
        written, resumed, backoff = 0, False, 0.1
        while time.monotonic() < deadline and not (stopping is not None and stopping()):
            try:
                if not resumed:
                    written += await self.resume()
                    resumed = True
                written += await self.drain_once(block=True)
            except ValkeyConnectionError as exc:
                # Valkey itself is away (a restart): SAQ cannot retry without it, so the holder
                # waits and goes on; the entries are in Valkey's append-only file meanwhile.
                log.warning(
                    "valkey unreachable; the partition waits", partition=self.partition, error=str(exc)[:200]
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                resumed = False  # a batch read before the error is pending again: finish it first
                continue
            backoff = 0.1
            if heartbeat is not None:
                await heartbeat()
        return written

    async def drain_once(self, *, block: bool = False) -> int:
        """Read new entries (up to ``max_rows`` requests or ``interval`` s) and store them; returns events."""
        entries = await self.read(block=block)
        if not entries:
            return 0
        return await self._process(entries)

    async def read(self, *, block: bool = False) -> list[Entry]:
        """New entries; they stay pending (under :data:`CONSUMER`) until written."""
        entries: list[Entry] = []
        rows = size = 0
        deadline = time.monotonic() + self.interval
        while rows < self.max_rows and size < self.max_bytes:
            wait = deadline - time.monotonic()
            if block and wait <= 0:
                break
            if entries:  # the batch closes once entries stop coming for a moment
                wait = min(wait, LINGER)
            response = await self.client.xreadgroup(
                GROUP,
                CONSUMER,
                {self.stream: ">"},
                count=min(self.max_rows - rows, READ_CHUNK),
                block=max(1, int(wait * 1000)) if block else None,
            )
            fresh = _entries(response)
            if not fresh:
                break
            entries += fresh
            rows += len(fresh)
            size += sum(len(record) for _, record in fresh)
        return entries

    async def _process(self, entries: Sequence[Entry], suffix: str = "") -> int:
        ids = [entry_id for entry_id, _ in entries]
        token = f"{self.stream}:{ids[0].decode()}:{ids[-1].decode()}:{len(ids)}{suffix}"
        processed = await self.processor.run(
            [blob for _, blob in entries], functools.partial(self._persist, token, ids)
        )
        # Durable from here (announced with its rows): live feeds need not wait for the insert.
        await publish_realtime(self.pubsub, processed)
        return await self._write(token, ids, processed.blob)

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

    async def _write(self, token: str, ids: Sequence[bytes], rows: bytes) -> int:
        started = time.perf_counter()
        count = await insert_rows(self.store, rows, token)
        if self.on_inserted is not None:  # a failure: the batch is written and refreshed again
            await self.on_inserted(rows)
        await announce_identified(self.on_identified, rows)  # a resumed batch's too
        await announce_written(self.on_written, rows)
        await self._acknowledge(ids, token, count, time.perf_counter() - started)
        if self.on_batch is not None:
            self.on_batch(count, time.perf_counter() - started)
        return count

    async def _acknowledge(self, ids: Sequence[bytes], token: str | None, count: int, seconds: float) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            if token is not None:
                pipe.hdel(self.batches, token)
                pipe.hdel(self.batch_rows, token)
                pipe.hincrby(_STATS, "batches", 1)
                pipe.hincrby(_STATS, "rows", count)
                pipe.lpush(_LATENCIES, f"{seconds:.6f}")
                pipe.ltrim(_LATENCIES, 0, 999)
            await pipe.execute()

    async def resume(self) -> int:
        """Finish what an earlier holder read and left: announced batches first (same token,
        rows as announced), then pending entries never announced, processed as new."""
        await self.ensure_group()
        pending, gone = await self._pending()
        if gone:  # deleted meanwhile (an acknowledged batch's entries): nothing left to do for them
            await self._acknowledge(gone, None, 0, 0.0)
        if not pending:
            return 0
        written = 0
        done: set[bytes] = set()
        announced: dict[bytes, bytes] = await self.client.execute_command(  # type: ignore[no-untyped-call]
            "HGETALL", self.batches
        )
        for token, joined in announced.items():
            ids = joined.split(b",")
            rows: bytes | None = await self.client.execute_command(  # type: ignore[no-untyped-call]
                "HGET", self.batch_rows, token
            )
            if rows is None:  # pragma: no cover - announced in one step with its rows
                log.warning("announced batch without rows", token=token.decode())
                continue
            written += await self._write(token.decode(), ids, rows)
            done.update(ids)
        rest = [entry for entry in pending if entry[0] not in done]
        for start in range(0, len(rest), self.max_rows):
            written += await self._process(rest[start : start + self.max_rows], ":resumed")
        log.info("resumed events left by an earlier holder", partition=self.partition, events=written)
        return written

    async def _pending(self) -> tuple[list[Entry], list[bytes]]:
        """The entries read under :data:`CONSUMER` and not acknowledged; the ids of those deleted since."""
        entries: list[Entry] = []
        gone: list[bytes] = []
        start = b"0"
        while True:
            response = await self.client.xreadgroup(GROUP, CONSUMER, {self.stream: start}, count=1000)
            raw: list[tuple[bytes, dict[bytes, bytes] | None]] = response[0][1] if response else []
            if not raw:
                return entries, gone
            for entry_id, fields in raw:
                if fields:
                    entries.append((entry_id, fields[_FIELD]))
                else:
                    gone.append(entry_id)
            start = raw[-1][0]


def _entries(response: list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]] | None) -> list[Entry]:
    if not response:
        return []
    return [(entry_id, fields[_FIELD]) for entry_id, fields in response[0][1] if fields]


async def batch_stats(client: Valkey) -> tuple[int, int, list[float]]:
    """(batches, rows, recent insert latencies) recorded by every worker's drainers."""
    async with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(_STATS)
        pipe.lrange(_LATENCIES, 0, -1)
        stats, latencies = await pipe.execute()
    return int(stats.get(b"batches", 0)), int(stats.get(b"rows", 0)), [float(x) for x in latencies]

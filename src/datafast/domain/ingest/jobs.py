"""Scaled mode's processing as SAQ jobs, run by ``datafast worker``.

``ingest.drain`` holds one partition of the ingest stream for a lease (:data:`LEASE` seconds):
it resumes what the partition's previous holder left, then processes new entries as they come,
sending SAQ a heartbeat after every read. Its SAQ key is the partition's, so one job per
partition is queued or running at any time, and the partition is processed in one place.

- A lease that ends is queued again at once (:func:`requeue`, the worker's ``after_process``),
  so the partition moves between workers as they come and go.
- A worker that dies stops the heartbeat: SAQ's sweep aborts the job and retries it on another
  worker, whose drainer resumes the dead holder's batch under its token.
- An error (ClickHouse away) fails the attempt; SAQ retries it with a growing delay, and the
  entries stay in the stream meanwhile.
- :func:`dispatch` (a SAQ cron job, every few seconds) queues every partition with no job — at
  start, and after a job ran out of retries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from saq import Queue
from saq.job import Job, Status
from valkey.asyncio import Valkey

from datafast.domain.ingest.log.stream import StreamDrainer, leftover_partitions, stream_name
from datafast.log import get_logger

__all__ = ("DRAIN", "LEASE", "StreamProcessing", "dispatch", "drain", "requeue")

log = get_logger(__name__)

DRAIN = "ingest.drain"
LEASE = 60.0
"""Seconds a drain job holds its partition before it is queued again (and may move)."""


class StreamProcessing:
    """A worker process's side of the ingest stream: a drainer per partition it holds (each keeps
    its processor's caches between leases), and how drain jobs are queued."""

    def __init__(
        self,
        client: Valkey,
        drainer: Callable[[int], StreamDrainer],
        partitions: int,
        heartbeat: int,
        lease: float = LEASE,
    ) -> None:
        self.client = client
        self._make = drainer
        self._drainers: dict[int, StreamDrainer] = {}
        self.partitions = partitions
        self.heartbeat = heartbeat
        self.lease = lease
        self.leftover: set[int] = set()

    def drainer(self, partition: int) -> StreamDrainer:
        if partition not in self._drainers:
            self._drainers[partition] = self._make(partition)
        return self._drainers[partition]

    async def in_use(self, *, scan: bool = False) -> list[int]:
        """The partitions to drain: ``0 … partitions-1``, and leftover streams of a higher number
        (looked for with ``scan``, at start; dropped once empty)."""
        if scan:
            self.leftover = set(await leftover_partitions(self.client, self.partitions))
        for partition in list(self.leftover):
            if not await self.client.xlen(stream_name(partition)):
                self.leftover.discard(partition)
        return [*range(self.partitions), *sorted(self.leftover)]

    async def enqueue(self, queue: Queue, partitions: list[int]) -> None:
        """Queue a drain job for each partition that has none (SAQ skips a key already queued or running)."""
        for partition in partitions:
            await queue.enqueue(
                DRAIN,
                key=f"{DRAIN}:{partition}",
                partition=partition,
                timeout=int(self.lease) + 300,  # a slow insert may outlast the lease
                heartbeat=self.heartbeat,
                retries=1_000_000,  # the entries wait in the stream; the job tries until it can
                retry_delay=0.5,
                retry_backoff=5,  # at most 5 s between tries: ingest resumes soon after ClickHouse does
                ttl=60,
            )


async def drain(ctx: dict[str, Any], *, partition: int) -> int:
    """Hold ``partition`` for a lease; returns the events written."""
    processing: StreamProcessing = ctx["ingest"]
    job: Job = ctx["job"]
    stopping = ctx["worker"].event.is_set
    touched = time.monotonic()
    every = min(1.0, processing.heartbeat / 4)

    async def heartbeat() -> None:
        nonlocal touched
        if time.monotonic() - touched >= every:
            touched = time.monotonic()
            try:
                await job.update()
            except Exception as exc:  # Valkey away: the drainer waits for it too
                log.warning("drain job heartbeat failed", partition=partition, error=str(exc)[:200])

    drainer = processing.drainer(partition)
    return await drainer.hold(processing.lease, heartbeat=heartbeat, stopping=stopping)


async def dispatch(ctx: dict[str, Any]) -> None:
    """Queue a drain job for every partition without one."""
    processing: StreamProcessing = ctx["ingest"]
    queue: Queue = ctx["worker"].queue
    await processing.enqueue(queue, await processing.in_use())


async def requeue(ctx: dict[str, Any]) -> None:
    """After a drain lease ends: queue the partition again at once (unless this worker is stopping;
    another worker's :func:`dispatch` picks it up then)."""
    job: Job | None = ctx.get("job")
    worker = ctx["worker"]
    if job is None or job.function != DRAIN or job.status != Status.COMPLETE or worker.event.is_set():
        return
    processing: StreamProcessing = ctx["ingest"]
    await processing.enqueue(worker.queue, [int((job.kwargs or {})["partition"])])

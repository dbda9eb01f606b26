"""Background jobs: run in this process (embedded) or through SAQ on Valkey (``datafast worker``).

A job is an ``async def job(ctx, **kwargs)`` registered in :mod:`datafast.jobs`. ``ctx`` holds
the process's adapters under ``"adapters"``, so a job sees the same interfaces as a request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from croniter import croniter
from saq import Queue

from datafast.log import get_logger

__all__ = ("InProcessQueue", "JobFunction", "JobQueue", "SaqQueue", "run_schedule", "saq_url")

JobFunction = Callable[..., Awaitable[Any]]
log = get_logger(__name__)


class JobQueue(Protocol):
    async def enqueue(self, name: str, *, timeout: float | None = None, **kwargs: Any) -> None:
        """Run ``name`` later; returns once the job is safely queued. ``timeout``: seconds the job
        may run (SAQ's default is 10 s, meant for small jobs)."""
        ...

    async def apply(self, name: str, timeout: float = 30, **kwargs: Any) -> Any:
        """Run ``name`` and wait for its result."""
        ...

    async def close(self) -> None: ...


class InProcessQueue:
    """Jobs run as tasks on this event loop; what is queued when the process dies is lost,
    so durable work (the ingest spool) never relies on this queue."""

    def __init__(self, functions: Mapping[str, JobFunction], context: dict[str, Any]) -> None:
        self._functions = functions
        self._context = context
        self._tasks: set[asyncio.Task[Any]] = set()

    def _function(self, name: str) -> JobFunction:
        try:
            return self._functions[name]
        except KeyError:
            raise LookupError(f"unknown job {name!r}") from None

    async def enqueue(self, name: str, *, timeout: float | None = None, **kwargs: Any) -> None:
        function = self._function(name)
        task = asyncio.create_task(self._run(name, function, kwargs, timeout))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, name: str, function: JobFunction, kwargs: dict[str, Any], timeout: float | None
    ) -> None:
        try:
            await asyncio.wait_for(function(self._context, **kwargs), timeout)
        except Exception:
            log.exception("job failed", job=name)

    async def apply(self, name: str, timeout: float = 30, **kwargs: Any) -> Any:
        return await asyncio.wait_for(self._function(name)(self._context, **kwargs), timeout)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)


def saq_url(valkey_url: str) -> str:
    """SAQ speaks the Redis protocol through redis-py, which wants a redis:// URL."""
    for scheme, replacement in (("valkeys://", "rediss://"), ("valkey://", "redis://")):
        if valkey_url.startswith(scheme):
            return replacement + valkey_url.removeprefix(scheme)
    return valkey_url


class SaqQueue:
    """Jobs go to a Valkey-backed SAQ queue and run in ``datafast worker`` processes."""

    def __init__(self, valkey_url: str, name: str = "datafast") -> None:
        self.saq: Queue = Queue.from_url(saq_url(valkey_url), name=name)

    async def connect(self) -> None:
        await self.saq.connect()

    # A worker that starts while jobs wait can sweep one it has just dequeued (SAQ marks it
    # aborted); retries put such a job back instead of losing it.
    RETRIES = 3

    async def enqueue(self, name: str, *, timeout: float | None = None, **kwargs: Any) -> None:
        if timeout is not None:
            kwargs["timeout"] = int(timeout)  # a SAQ job setting, not the function's
        await self.saq.enqueue(name, retries=self.RETRIES, **kwargs)

    async def apply(self, name: str, timeout: float = 30, **kwargs: Any) -> Any:
        return await self.saq.apply(name, timeout=timeout, poll_interval=0.05, retries=self.RETRIES, **kwargs)

    async def close(self) -> None:
        await self.saq.disconnect()


async def run_schedule(queue: JobQueue, schedule: Sequence[tuple[str, str]]) -> None:
    """Embedded mode's cron (scaled mode's is ``datafast worker``'s): queue each ``(job, cron)`` at
    its times, until cancelled. A run missed while the process was down is not made up."""
    now = datetime.now(UTC)
    times = {name: croniter(cron, now) for name, cron in schedule}
    upcoming = {name: it.get_next(float) for name, it in times.items()}
    while upcoming:
        name = min(upcoming, key=lambda n: upcoming[n])
        await asyncio.sleep(max(0.0, upcoming[name] - time.time()))
        try:
            await queue.enqueue(name)
        except Exception:  # the schedule goes on
            log.exception("scheduled job not queued", job=name)
        upcoming[name] = times[name].get_next(float)

"""Builds every adapter from settings: the one place that picks embedded or scaled parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import TracerProvider
from valkey.asyncio import Valkey

from datafast.lib.cache import Cache, MemoryCache, ValkeyCache
from datafast.lib.eventstore import EventStore, create_event_store
from datafast.lib.locks import Locks, MemoryLocks, ValkeyLocks
from datafast.lib.pubsub import MemoryPubSub, PubSub, ValkeyPubSub
from datafast.lib.queue import InProcessQueue, JobFunction, JobQueue, SaqQueue
from datafast.lib.ratelimit import MemoryRateLimiter, RateLimiter, ValkeyRateLimiter
from datafast.log import get_logger
from datafast.settings import Settings

__all__ = ("Adapters", "create_adapters")

log = get_logger(__name__)


@dataclass(slots=True)
class Adapters:
    settings: Settings
    event_store: EventStore
    cache: Cache
    rate_limiter: RateLimiter
    pubsub: PubSub
    queue: JobQueue
    valkey: Valkey | None = None
    job_context: dict[str, Any] = field(default_factory=dict)
    locks: Locks = field(default_factory=MemoryLocks)
    """Named locks shared by this deployment's processes (in this process only, embedded)."""

    async def close(self) -> None:
        """Close everything, even when a part is already gone (e.g. Valkey down at shutdown)."""
        closers = [self.queue.close, self.event_store.close]
        if self.valkey is not None:
            closers.append(self.valkey.aclose)
        for close in closers:
            try:
                await close()
            except Exception as exc:  # shutdown goes on whatever one part raises
                log.warning(
                    "could not close cleanly", part=getattr(close, "__qualname__", "?"), error=str(exc)
                )


async def create_adapters(
    settings: Settings, jobs: dict[str, JobFunction], tracer_provider: TracerProvider | None = None
) -> Adapters:
    """Connect what settings ask for. Nothing here talks to ClickHouse yet: ping it to check."""
    event_store = create_event_store(settings, tracer_provider)
    context: dict[str, Any] = {}
    if settings.valkey_url is None:
        adapters = Adapters(
            settings=settings,
            event_store=event_store,
            cache=MemoryCache(),
            rate_limiter=MemoryRateLimiter(),
            pubsub=MemoryPubSub(),
            queue=InProcessQueue(jobs, context),
            job_context=context,
        )
    else:
        valkey = Valkey.from_url(settings.valkey_url, socket_connect_timeout=5, health_check_interval=30)
        queue = SaqQueue(settings.valkey_url)
        await queue.connect()
        adapters = Adapters(
            settings=settings,
            event_store=event_store,
            cache=ValkeyCache(valkey),
            rate_limiter=ValkeyRateLimiter(valkey),
            pubsub=ValkeyPubSub(valkey),
            queue=queue,
            valkey=valkey,
            job_context=context,
            locks=ValkeyLocks(valkey),
        )
    context["adapters"] = adapters
    return adapters

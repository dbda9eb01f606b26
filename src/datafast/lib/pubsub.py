"""Realtime publish/subscribe: in-process (embedded) or Valkey channels (across processes)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Protocol

from valkey.asyncio import Valkey
from valkey.exceptions import ValkeyError

__all__ = ("MemoryPubSub", "PubSub", "ValkeyPubSub")


class PubSub(Protocol):
    async def publish(self, channel: str, message: bytes) -> None: ...
    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """``async with pubsub.subscribe(ch) as messages: async for m in messages: ...``"""
        ...


class MemoryPubSub:
    """Fan-out to per-subscriber queues; a slow subscriber loses its oldest messages, never blocks."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[bytes]]] = {}
        self._queue_size = queue_size

    async def publish(self, channel: str, message: bytes) -> None:
        for queue in self._subscribers.get(channel, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[bytes]]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(self._queue_size)
        self._subscribers.setdefault(channel, set()).add(queue)
        try:
            yield _drain(queue)
        finally:
            subscribers = self._subscribers.get(channel)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[channel]


async def _drain(queue: asyncio.Queue[bytes]) -> AsyncIterator[bytes]:
    while True:
        yield await queue.get()


class ValkeyPubSub:
    def __init__(self, client: Valkey, prefix: str = "datafast:pubsub:") -> None:
        self._client = client
        self._prefix = prefix

    async def publish(self, channel: str, message: bytes) -> None:
        await self._client.publish(self._prefix + channel, message)

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[bytes]]:
        pubsub = self._client.pubsub()
        await pubsub.subscribe(self._prefix + channel)
        # Wait for the server's confirmation so that nothing published after we return is missed.
        confirmation = await pubsub.get_message(timeout=5.0)
        if confirmation is None or confirmation["type"] != "subscribe":
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise ConnectionError(f"Valkey did not confirm the subscription to {channel}")
        try:
            yield self._messages(pubsub)
        finally:
            try:
                await pubsub.unsubscribe()
            except (ValkeyError, OSError):
                pass  # the connection is gone (that is often why we leave): closing it is what matters
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    @staticmethod
    async def _messages(pubsub: object) -> AsyncIterator[bytes]:
        async for message in pubsub.listen():  # type: ignore[attr-defined]
            if message.get("type") == "message":
                data: bytes = message["data"]
                yield data

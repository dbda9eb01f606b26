"""Retried sends are no-ops: the first stored event with a key within the window wins.

Processing asks which keys were already stored (``seen``) and marks a batch's keys only once
the batch is durable: a batch lost before that (a worker killed mid-batch) leaves no mark,
so whoever processes it again does not take its events for duplicates. In scaled mode the
marks are set in the same atomic step that saves the batch's sessions and announces it
(:meth:`~datafast.domain.ingest.process.sessions.ValkeySessionTracker.save_and_announce`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from valkey.asyncio import Valkey

__all__ = ("Deduplicator", "MemoryDeduplicator", "ValkeyDeduplicator")


class Deduplicator(Protocol):
    async def seen(self, keys: list[str]) -> list[bool]:
        """For each key: whether an event with it was stored within the window."""
        ...

    async def mark(self, keys: list[str]) -> None:
        """Record ``keys`` as stored (their batch is durable)."""
        ...


class MemoryDeduplicator:
    """A bounded insertion-ordered map of key → expiry (embedded mode: one process)."""

    def __init__(self, window: float = 3600, max_entries: int = 1_000_000) -> None:
        self._window = window
        self._max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    async def seen(self, keys: list[str]) -> list[bool]:
        now = time.monotonic()
        return [(until := self._seen.get(key)) is not None and until > now for key in keys]

    async def mark(self, keys: list[str]) -> None:
        now = time.monotonic()
        while self._seen:
            oldest, expires = next(iter(self._seen.items()))
            if expires > now and len(self._seen) + len(keys) <= self._max_entries:
                break
            del self._seen[oldest]
        for key in keys:
            self._seen.pop(key, None)  # re-inserted at the end: the map stays ordered by expiry
            self._seen[key] = now + self._window


class ValkeyDeduplicator:
    def __init__(self, client: Valkey, window: int = 24 * 3600, prefix: str = "datafast:dedupe:") -> None:
        self._client = client
        self.window = window
        self.prefix = prefix

    async def seen(self, keys: list[str]) -> list[bool]:
        values = await self._client.mget([self.prefix + key for key in keys])
        return [value is not None for value in values]

    async def mark(self, keys: list[str]) -> None:
        if keys:
            async with self._client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(self.prefix + key, b"1", ex=self.window)
                await pipe.execute()

"""Retried sends are no-ops: the first sighting of a key within the window wins."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from valkey.asyncio import Valkey

__all__ = ("Deduplicator", "MemoryDeduplicator", "ValkeyDeduplicator")


class Deduplicator(Protocol):
    async def first_seen(self, keys: list[str]) -> list[bool]:
        """For each key: True the first time it is seen within the window, False after."""
        ...

    async def forget(self, keys: list[str]) -> None:
        """Undo ``first_seen`` for keys whose events could not be stored."""
        ...


class MemoryDeduplicator:
    """A bounded insertion-ordered map of key → expiry (embedded mode: one process)."""

    def __init__(self, window: float = 3600, max_entries: int = 1_000_000) -> None:
        self._window = window
        self._max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    async def first_seen(self, keys: list[str]) -> list[bool]:
        now = time.monotonic()
        while self._seen:
            oldest, expires = next(iter(self._seen.items()))
            if expires > now and len(self._seen) < self._max_entries:
                break
            del self._seen[oldest]
        result = []
        for key in keys:
            until = self._seen.get(key)
            fresh = until is None or until <= now
            if fresh:
                self._seen.pop(key, None)  # re-inserted at the end: the map stays ordered by expiry
                self._seen[key] = now + self._window
            result.append(fresh)
        return result

    async def forget(self, keys: list[str]) -> None:
        for key in keys:
            self._seen.pop(key, None)


class ValkeyDeduplicator:
    def __init__(self, client: Valkey, window: int = 24 * 3600, prefix: str = "datafast:dedupe:") -> None:
        self._client = client
        self._window = window
        self._prefix = prefix

    async def first_seen(self, keys: list[str]) -> list[bool]:
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.set(self._prefix + key, b"1", nx=True, ex=self._window)
            results = await pipe.execute()
        return [bool(r) for r in results]

    async def forget(self, keys: list[str]) -> None:
        if keys:
            await self._client.delete(*(self._prefix + key for key in keys))

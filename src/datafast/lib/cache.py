"""Short-lived key/value cache: in-process (embedded) or Valkey (shared by every process)."""

from __future__ import annotations

import time
from typing import Protocol

from valkey.asyncio import Valkey

__all__ = ("Cache", "MemoryCache", "ValkeyCache")


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl: float) -> None: ...
    async def delete(self, *keys: str) -> None: ...


class MemoryCache:
    """A dict with expiry times, bounded so a busy process cannot grow without limit."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._max_entries = max_entries

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires < time.monotonic():
            self._entries.pop(key, None)
            return None
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        if len(self._entries) >= self._max_entries:
            self._evict()
        self._entries[key] = (time.monotonic() + ttl, value)

    async def delete(self, *keys: str) -> None:
        for key in keys:
            self._entries.pop(key, None)

    def _evict(self) -> None:
        now = time.monotonic()
        for key in [k for k, (expires, _) in self._entries.items() if expires < now]:
            del self._entries[key]
        while len(self._entries) >= self._max_entries:
            # dicts keep insertion order: drop the oldest entry.
            del self._entries[next(iter(self._entries))]


class ValkeyCache:
    def __init__(self, client: Valkey, prefix: str = "datafast:cache:") -> None:
        self._client = client
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._client.get(self._prefix + key)
        return value

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._client.set(self._prefix + key, value, px=max(1, int(ttl * 1000)))

    async def delete(self, *keys: str) -> None:
        if keys:
            await self._client.delete(*(self._prefix + key for key in keys))

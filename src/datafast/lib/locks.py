"""Named locks: one holder at a time per name, in this process (embedded) or across every process
sharing Valkey (scaled: valkey-py's lock, which expires if its holder dies)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from typing import Protocol

from valkey.asyncio import Valkey

__all__ = ("Locks", "MemoryLocks", "ValkeyLocks")


class Locks(Protocol):
    def hold(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait until ``name`` is free, hold it for the block; ``TimeoutError`` if it stays held."""
        ...


class MemoryLocks:
    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        async with lock:
            yield


class ValkeyLocks:
    def __init__(self, client: Valkey, expire: float = 120.0, wait: float = 60.0) -> None:
        self.client = client
        self.expire = expire
        """Seconds after which a lock whose holder died is free again."""
        self.wait = wait

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        lock = self.client.lock(
            f"datafast:lock:{name}", timeout=self.expire, blocking_timeout=self.wait, thread_local=False
        )
        if not await lock.acquire():
            raise TimeoutError(f"{name} stayed locked for {self.wait} s")
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # expired meanwhile, or Valkey away: it frees itself
                await lock.release()

"""Fixed-window rate limiting: in-process (embedded) or Valkey (shared by every process)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from valkey.asyncio import Valkey

__all__ = ("MemoryRateLimiter", "RateLimit", "RateLimiter", "ValkeyRateLimiter")


@dataclass(frozen=True, slots=True)
class RateLimit:
    allowed: bool
    remaining: int
    retry_after: int
    """Seconds until the window resets (what a 429's Retry-After carries)."""


@runtime_checkable
class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window: int) -> RateLimit:
        """Count one hit of ``key``; at most ``limit`` hits are allowed per ``window`` seconds."""
        ...

    async def peek(self, key: str, limit: int, window: int) -> RateLimit:
        """The verdict the next hit would get, without counting one (e.g. failed logins so far)."""
        ...

    async def release(self, key: str) -> None:
        """Take back one hit of ``key`` (a hit counted up front that turned out not to count)."""
        ...

    async def reset(self, key: str) -> None: ...


def _verdict(count: int, limit: int, retry_after: float) -> RateLimit:
    return RateLimit(
        allowed=count <= limit,
        remaining=max(0, limit - count),
        retry_after=max(1, math.ceil(retry_after)),
    )


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    async def hit(self, key: str, limit: int, window: int) -> RateLimit:
        now = time.monotonic()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= window:
            started, count = now, 0
        count += 1
        self._windows[key] = (started, count)
        if len(self._windows) > 100_000:
            self._windows = {k: v for k, v in self._windows.items() if now - v[0] < window}
        return _verdict(count, limit, started + window - now)

    async def peek(self, key: str, limit: int, window: int) -> RateLimit:
        now = time.monotonic()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= window:
            started, count = now, 0
        return _verdict(count + 1, limit, started + window - now)

    async def release(self, key: str) -> None:
        window = self._windows.get(key)
        if window is not None and window[1] > 0:
            self._windows[key] = (window[0], window[1] - 1)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)


_RELEASE = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


class ValkeyRateLimiter:
    def __init__(self, client: Valkey, prefix: str = "datafast:ratelimit:") -> None:
        self._client = client
        self._prefix = prefix

    async def hit(self, key: str, limit: int, window: int) -> RateLimit:
        name = self._prefix + key
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window, nx=True)
            pipe.pttl(name)
            count, _, ttl_ms = await pipe.execute()
        return _verdict(int(count), limit, (ttl_ms if ttl_ms > 0 else window * 1000) / 1000)

    async def peek(self, key: str, limit: int, window: int) -> RateLimit:
        name = self._prefix + key
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.get(name)
            pipe.pttl(name)
            count, ttl_ms = await pipe.execute()
        return _verdict(int(count or 0) + 1, limit, (ttl_ms if ttl_ms > 0 else window * 1000) / 1000)

    async def release(self, key: str) -> None:
        # Only while the window lives and above zero: a DECR on a missing key would create it at -1.
        await self._client.eval(_RELEASE, 1, self._prefix + key)  # type: ignore[misc]

    async def reset(self, key: str) -> None:
        await self._client.delete(self._prefix + key)

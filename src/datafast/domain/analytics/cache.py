"""The Stats API result cache: short-lived, keyed by site + query, dropped when the site gets new data.

Each site has a *data version* in the cache adapter (in-process or Valkey, so every web process
sees the same one). Result keys include it, so bumping the version after ClickHouse writes a
batch for a site makes every cached result of that site unreachable at once (they expire
on their own TTL); no key listing or scanning is needed.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import msgspec

from datafast.lib.cache import Cache

__all__ = ("ResultCache",)

T = TypeVar("T")
_VERSION_TTL = 7 * 86400.0


class ResultCache:
    def __init__(self, cache: Cache, ttl: float) -> None:
        self.cache = cache
        self.ttl = ttl

    @staticmethod
    def _version_key(website_id: str) -> str:
        return f"analytics:version:{website_id}"

    async def invalidate(self, website_ids: Iterable[str]) -> None:
        """New data for these sites: results cached before now are no longer served."""
        for website_id in set(website_ids):
            await self.cache.set(self._version_key(website_id), uuid.uuid4().hex.encode(), _VERSION_TTL)

    async def get_or_compute(
        self, website_id: str, kind: str, query: Any, type_: type[T], compute: Callable[[], Awaitable[T]]
    ) -> T:
        if self.ttl <= 0:
            return await compute()
        version = await self.cache.get(self._version_key(website_id)) or b"0"
        digest = hashlib.sha256(msgspec.json.encode([kind, query])).hexdigest()[:32]
        key = f"analytics:result:{website_id}:{version.decode()}:{digest}"
        hit = await self.cache.get(key)
        if hit is not None:
            return msgspec.json.decode(hit, type=type_)
        value = await compute()
        await self.cache.set(key, msgspec.json.encode(value), self.ttl)
        return value

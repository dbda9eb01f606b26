"""Which sites exist and which hostnames belong to them, cached for the /track hot path."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from datafast.db.models import Website

__all__ = ("SiteDirectory", "TrackedSite")


@dataclass(frozen=True, slots=True)
class TrackedSite:
    id: uuid.UUID
    domain: str
    hostnames: frozenset[str]
    timezone: str
    currency: str

    def owns(self, hostname: str) -> bool:
        """The site's domain, any subdomain of it, or one of its extra hostnames."""
        hostname = hostname.lower().rstrip(".")
        if hostname in self.hostnames or hostname == self.domain:
            return True
        return hostname.endswith("." + self.domain)

    def is_self(self, hostname: str) -> bool:
        return bool(hostname) and self.owns(hostname)


class SiteDirectory:
    """website_id → site, read from the config database and kept for ``ttl`` seconds.

    Unknown ids are remembered too (for ``miss_ttl``) so a flood of bad ids costs no queries.
    """

    def __init__(self, engine: AsyncEngine, ttl: float = 60.0, miss_ttl: float = 10.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._miss_ttl = miss_ttl
        self._entries: dict[str, tuple[float, TrackedSite | None]] = {}
        self._loading: dict[str, asyncio.Future[TrackedSite | None]] = {}

    async def get(self, website_id: str) -> TrackedSite | None:
        entry = self._entries.get(website_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        # One query per site however many requests wait for it (a cold start under load).
        loading = self._loading.get(website_id)
        if loading is not None:
            return await asyncio.shield(loading)
        future: asyncio.Future[TrackedSite | None] = asyncio.get_running_loop().create_future()
        self._loading[website_id] = future
        try:
            site = await self._load(website_id)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as unhandled
            raise
        finally:
            del self._loading[website_id]
        if len(self._entries) > 100_000:
            self._entries.clear()
        self._entries[website_id] = (time.monotonic() + (self._ttl if site else self._miss_ttl), site)
        future.set_result(site)
        return site

    def forget(self, website_id: str) -> None:
        self._entries.pop(website_id, None)

    async def _load(self, website_id: str) -> TrackedSite | None:
        try:
            key = uuid.UUID(website_id)
        except ValueError:
            return None
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        Website.id, Website.domain, Website.hostnames, Website.timezone, Website.currency
                    ).where(Website.id == key)
                )
            ).first()
        if row is None:
            return None
        return TrackedSite(
            id=row.id,
            domain=row.domain,
            hostnames=frozenset(h.lower() for h in row.hostnames or ()),
            timezone=row.timezone,
            currency=row.currency,
        )

"""Whether /track accepts a site's events, per the site owner's billing standing.

Cached per site for ``ttl`` seconds in the capture process, so the hot path costs a dict
lookup; a site's first request (and one per ``ttl``) reads the config database. Only an
account past its grace is refused: over the allowance, or unpaid within grace, events keep
arriving (no data lost).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from datafast.domain.billing.accounts import current_account, owner_of, standing
from datafast.settings import BillingSettings

__all__ = ("BillingGate",)


class BillingGate:
    def __init__(self, engine: AsyncEngine, billing: BillingSettings, ttl: float = 60.0) -> None:
        self._engine = engine
        self._billing = billing
        self._ttl = ttl
        self._entries: dict[uuid.UUID, tuple[float, str | None]] = {}

    async def refusal(self, website_id: uuid.UUID) -> str | None:
        """None when the site's events are accepted, else why not (for a 402 problem)."""
        entry = self._entries.get(website_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        reason = await self._load(website_id)
        if len(self._entries) > 100_000:
            self._entries.clear()
        self._entries[website_id] = (time.monotonic() + self._ttl, reason)
        return reason

    def forget(self) -> None:
        self._entries.clear()

    async def _load(self, website_id: uuid.UUID) -> str | None:
        async with AsyncSession(self._engine, expire_on_commit=False) as db:
            owner = await owner_of(db, website_id)
            if owner is None:
                return None
            account = await current_account(db, self._billing, owner)
        now = datetime.now(UTC)
        verdict = standing(account, timedelta(days=self._billing.grace_days), now)
        return None if verdict.accepting else verdict.reason

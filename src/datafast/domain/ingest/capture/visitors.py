"""Visitor and session ids: from the tracker's cookies, else a cookieless daily-salted hash.

Cookieless ids hash (salt of the day, site, IP, User-Agent): the same browser on the same
network is one visitor for a day, and nobody can recompute the id once the salt is deleted
(salts older than yesterday are). Yesterday's salt is kept so a visit that crosses midnight
stays one visitor and one session.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from datafast.db.models import VisitorSalt

__all__ = ("SaltBook", "cookieless_visitor_id")


def cookieless_visitor_id(salt: bytes, site_id: str, ip: str, user_agent: str) -> str:
    digest = hashlib.blake2b(f"{site_id}|{ip}|{user_agent}".encode(), key=salt, digest_size=12)
    return digest.hexdigest()


class SaltBook:
    """Today's and yesterday's salts (UTC days), shared by every process through the config DB."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._salts: dict[date, bytes] = {}
        self._lock = asyncio.Lock()
        self._current: tuple[int, bytes, bytes | None] = (-1, b"", None)

    async def salts(self, now: float) -> tuple[bytes, bytes | None]:
        """(today's salt, yesterday's salt if it still exists)."""
        day_number = int(now // 86400)  # UTC days since the epoch: cheap on the hot path
        if day_number == self._current[0]:
            return self._current[1], self._current[2]
        today = datetime.fromtimestamp(now, UTC).date()
        if today not in self._salts:
            async with self._lock:
                if today not in self._salts:
                    await self._rotate(today)
        self._current = (day_number, self._salts[today], self._salts.get(today - timedelta(days=1)))
        return self._current[1], self._current[2]

    async def _rotate(self, today: date) -> None:
        yesterday = today - timedelta(days=1)
        async with self._engine.begin() as connection:
            await connection.execute(delete(VisitorSalt).where(VisitorSalt.day < yesterday))
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    insert(VisitorSalt).values(id=uuid.uuid4(), day=today, salt=secrets.token_bytes(32))
                )
        except IntegrityError:
            pass  # another process made today's salt first
        async with self._engine.connect() as connection:
            rows = (await connection.execute(select(VisitorSalt.day, VisitorSalt.salt))).all()
        self._salts = {row.day: bytes(row.salt) for row in rows if row.day >= yesterday}

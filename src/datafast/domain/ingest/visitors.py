"""Visitor and session ids: from the tracker's cookies, else a cookieless daily-salted hash.

Cookieless ids hash (salt of the day, site, IP, User-Agent): the same browser on the same
network is one visitor for a day, and nobody can recompute the id once the salt is deleted
(salts older than yesterday are). Yesterday's salt is kept so a visit that crosses midnight
stays one visitor and one session.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from valkey.asyncio import Valkey

from datafast.db.models import VisitorSalt

__all__ = (
    "MemorySessionTracker",
    "SaltBook",
    "SessionTracker",
    "SessionView",
    "ValkeySessionTracker",
    "cookieless_visitor_id",
    "create_session_tracker",
)

SESSION_TIMEOUT = 30 * 60


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


Entry = tuple[str, float]
"""(session id, last seen epoch seconds) of a visitor."""


class SessionTracker(Protocol):
    """Where visitors' current sessions are kept; a request loads what it needs once and saves once."""

    async def load(self, keys: Iterable[str]) -> dict[str, Entry]: ...
    async def save(self, entries: dict[str, Entry]) -> None: ...


class SessionView:
    """The 30-minute rule applied to the entries one request loaded; ``changed`` is what to save."""

    def __init__(self, entries: dict[str, Entry], timeout: float = SESSION_TIMEOUT) -> None:
        self._entries = entries
        self._timeout = timeout
        self.changed: dict[str, Entry] = {}

    def active(self, key: str, at: float) -> bool:
        entry = self._entries.get(key)
        return entry is not None and at - entry[1] < self._timeout

    def session_for(self, key: str, at: float) -> str:
        entry = self._entries.get(key)
        if entry is not None and 0 <= at - entry[1] < self._timeout:
            entry = (entry[0], at)
        elif entry is None or at >= entry[1]:
            # Unique, not secret: the fast PRNG is enough (uuid4 asks the kernel for entropy each time).
            entry = (f"{random.getrandbits(64):016x}", at)
        # else: an older, delayed event of the current session keeps it as it is.
        self._entries[key] = self.changed[key] = entry
        return entry[0]


class MemorySessionTracker:
    """Kept in this process (embedded mode has one process); a restart starts new sessions."""

    def __init__(self, timeout: float = SESSION_TIMEOUT, max_entries: int = 1_000_000) -> None:
        self._timeout = timeout
        self._max_entries = max_entries
        self._sessions: dict[str, Entry] = {}

    async def load(self, keys: Iterable[str]) -> dict[str, Entry]:
        return {key: entry for key in keys if (entry := self._sessions.get(key)) is not None}

    async def save(self, entries: dict[str, Entry]) -> None:
        self._sessions.update(entries)
        if len(self._sessions) > self._max_entries:
            now = time.time()
            self._sessions = {k: v for k, v in self._sessions.items() if now - v[1] < self._timeout}


class ValkeySessionTracker:
    """Shared by every web process (scaled mode): a visitor's requests may reach any of them."""

    def __init__(
        self, client: Valkey, timeout: float = SESSION_TIMEOUT, prefix: str = "datafast:session:"
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._prefix = prefix

    async def load(self, keys: Iterable[str]) -> dict[str, Entry]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        values: list[bytes | None] = await self._client.mget([self._prefix + key for key in wanted])
        found: dict[str, Entry] = {}
        for key, raw in zip(wanted, values, strict=True):
            if raw is not None:
                session_id, _, last = raw.decode().partition("|")
                found[key] = (session_id, float(last))
        return found

    async def save(self, entries: dict[str, Entry]) -> None:
        if not entries:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for key, (session_id, last) in entries.items():
                pipe.set(self._prefix + key, f"{session_id}|{last}", ex=int(self._timeout) + 60)
            await pipe.execute()


def create_session_tracker(valkey: Valkey | None) -> SessionTracker:
    return MemorySessionTracker() if valkey is None else ValkeySessionTracker(valkey)

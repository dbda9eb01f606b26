"""Visitor states by site-local day (``*_local_daily``, migration 0009): keeping them, and when to read them.

Reports merge one HyperLogLog state per day and value from these tables instead of 24 hourly
ones; the summed columns still come from the hourly and daily rollups. A site's local days at a
UTC offset are read once that (site, offset) is listed ``ready`` in ``local_day_offsets``:

- :meth:`LocalDays.prepare` (the ``local_days`` job, every minute, for every site) lists the
  whole-hour offsets the site's timezone uses around now, which starts the views writing them,
  then fills each new one from the hourly rollups and marks it ready. A state is a set union, so
  the rows the views write while it fills are merged twice without changing a count.
- :meth:`LocalDays.reset` (a privacy erase, which rebuilds the hourly rows of some days) deletes
  the site's local rows and marks its offsets not ready; the next job run fills them again.
  It waits :attr:`LocalDays.remember` seconds between the two, so that no process still reads
  the rows it deletes.

Until an offset is ready, its days are read from the hourly rollups, as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from datafast.lib.eventstore import EventStore
from datafast.log import get_logger

__all__ = ("STATES", "LocalDays", "local_day_select", "zone_offsets")

log = get_logger(__name__)

STATES = {"sessions": ("visitors", "converted"), "events": ("visitors", "sessions", "converted")}
"""The visitor-state columns of each rollup, the only columns kept by local day."""

SPAN = timedelta(days=2 * 366)
"""Offsets are listed for the timezone's rules this far around now (older days read hourly rows)."""


def local_day_select(rollup: str, source: str, offsets: str, where: str = "") -> str:
    """Local day rows of the hourly rollup rows in ``source`` for each (site, offset) of ``offsets``
    (a table or subquery with ``website_id`` and ``utc_offset``): the view's SQL and the fill's."""
    merged = ", ".join(f"uniqCombined64MergeState(15)(h.{s}) AS {s}" for s in STATES[rollup])
    return (
        "SELECT h.website_id AS website_id, o.utc_offset AS utc_offset,"  # noqa: S608 — fixed fragments
        " toDate(h.hour + toIntervalSecond(o.utc_offset)) AS day, h.dimension AS dimension,"
        f" h.value AS value, {merged}"
        f" FROM {source} AS h INNER JOIN {offsets} AS o ON o.website_id = h.website_id{where}"
        " GROUP BY website_id, utc_offset, day, dimension, value"
    )


@lru_cache(maxsize=512)
def _offsets(timezone: str, around: int) -> tuple[int, ...]:
    zone = ZoneInfo(timezone)
    moment = datetime.fromordinal(around).replace(tzinfo=UTC) - SPAN
    found: set[int] = set()
    while moment < datetime.fromordinal(around).replace(tzinfo=UTC) + SPAN:
        offset = moment.astimezone(zone).utcoffset()
        if offset is not None and not offset.total_seconds() % 3600:
            found.add(int(offset.total_seconds()))
        moment += timedelta(days=1)
    return tuple(sorted(found))


def zone_offsets(timezone: str, now: datetime) -> tuple[int, ...]:
    """The whole-hour UTC offsets (seconds) ``timezone`` uses within :data:`SPAN` of ``now``."""
    return _offsets(timezone, now.toordinal())


class LocalDays:
    """Reads and keeps ``local_day_offsets`` and the ``*_local_daily`` rows."""

    def __init__(self, store: EventStore, *, settle: float = 2.0, remember: float = 2.0) -> None:
        self.store = store
        self.remember = remember
        """Seconds a site's ready offsets are remembered (a dashboard's queries ask once)."""
        self._ready: dict[str, tuple[float, frozenset[int]]] = {}
        self.settle = settle
        """Seconds between listing an offset and filling it: an insert whose views ran just before
        the listing is in the hourly rollups by then, so the fill reads it."""

    async def ready(self, website_id: str) -> frozenset[int]:
        """The offsets whose local days reports may read for this site."""
        at, offsets = self._ready.get(website_id, (0.0, frozenset()))
        if time.monotonic() - at < self.remember:
            return offsets
        result = await self.store.query(
            "SELECT utc_offset FROM local_day_offsets FINAL WHERE website_id = {site:UUID} AND ready = 1",
            parameters={"site": website_id},
        )
        offsets = frozenset(int(row[0]) for row in result.result_rows)
        self._ready[website_id] = (time.monotonic(), offsets)
        return offsets

    async def all_ready(self) -> dict[str, set[int]]:
        """Every site's ready offsets, by site id (the job's first look, one query for all sites)."""
        result = await self.store.query(
            "SELECT website_id, groupArray(utc_offset) FROM local_day_offsets FINAL"
            " WHERE ready = 1 GROUP BY website_id",
            limited=False,
        )
        return {str(site): {int(offset) for offset in offsets} for site, offsets in result.result_rows}

    async def prepare(self, website_id: str, timezone: str, now: datetime | None = None) -> list[int]:
        """List and fill the offsets of ``timezone`` this site lacks; returns those filled."""
        wanted = zone_offsets(timezone, now or datetime.now(UTC))
        result = await self.store.query(
            "SELECT utc_offset, ready FROM local_day_offsets FINAL WHERE website_id = {site:UUID}",
            parameters={"site": website_id},
        )
        listed = {int(offset): bool(ready) for offset, ready in result.result_rows}
        missing = [offset for offset in wanted if not listed.get(offset)]
        if not missing:
            return []
        rolled = await self.store.query(
            "SELECT count() FROM (SELECT 1 FROM sessions_hourly WHERE website_id = {site:UUID} LIMIT 1)",
            parameters={"site": website_id},
        )
        if not rolled.result_rows[0][0]:  # a new site: the views write its days from the first event
            await self._mark(website_id, missing, ready=True)
            self._ready.pop(website_id, None)
            return missing
        await self._mark(website_id, [o for o in missing if o not in listed], ready=False)
        if self.settle:
            await asyncio.sleep(self.settle)
        for rollup in STATES:
            await self.store.command(
                f"INSERT INTO {rollup}_local_daily "
                + local_day_select(
                    rollup,
                    f"{rollup}_hourly",
                    "(SELECT arrayJoin({offsets:Array(Int32)}) AS utc_offset, {site:UUID} AS website_id)",
                    " WHERE h.website_id = {site:UUID}",
                ),
                parameters={"site": website_id, "offsets": missing},
                settings=self._sync,
            )
        await self._mark(website_id, missing, ready=True)
        self._ready.pop(website_id, None)
        log.info("local_days.filled", website_id=website_id, offsets=missing)
        return missing

    async def reset(self, website_id: str) -> None:
        """Forget the site's local days (after its hourly rows were rebuilt): the next
        :meth:`prepare` fills them again from the hourly rollups."""
        result = await self.store.query(
            "SELECT utc_offset FROM local_day_offsets FINAL WHERE website_id = {site:UUID}",
            parameters={"site": website_id},
        )
        await self._mark(website_id, [int(row[0]) for row in result.result_rows], ready=False)
        self._ready.pop(website_id, None)
        await asyncio.sleep(self.remember)  # until no process remembers them ready
        on_cluster = f" ON CLUSTER {self.store.cluster}" if self.store.cluster else ""
        suffix = "_local" if self.store.cluster else ""
        for rollup in STATES:
            await self.store.command(
                f"ALTER TABLE {rollup}_local_daily{suffix}{on_cluster}"
                " DELETE WHERE website_id = {site:UUID}",
                parameters={"site": website_id},
                settings={"mutations_sync": 2},
            )

    @property
    def _sync(self) -> dict[str, int]:
        """On a cluster, an insert through a Distributed table lands on its shard before it returns."""
        return {"insert_distributed_sync": 1} if self.store.cluster else {}

    async def _mark(self, website_id: str, offsets: Iterable[int], *, ready: bool) -> None:
        listed = sorted(offsets)
        if listed:
            await self.store.command(
                "INSERT INTO local_day_offsets (website_id, utc_offset, ready, at)"
                " SELECT {site:UUID}, arrayJoin({offsets:Array(Int32)}), {ready:UInt8}, now64(6)",
                parameters={"site": website_id, "offsets": listed, "ready": int(ready)},
                settings=self._sync,
            )

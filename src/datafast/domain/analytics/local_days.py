"""Visitor states by site-local day (``*_local_daily``, migration 0009): keeping them, and when to read them.

Reports merge one HyperLogLog state per day and value from these tables instead of 24 hourly
ones; the summed columns still come from the hourly and daily rollups. A site's local days at a
UTC offset are read once that (site, offset) is listed ``ready`` in ``local_day_offsets``:

- :meth:`LocalDays.prepare_many` (the ``local_days`` job, every 5 minutes, and when a site is added
  or its timezone changes) lists the whole-hour offsets the sites' timezones use around now, which
  starts the views writing them, then fills each new one from the hourly rollups and marks it
  ready. A state is a set union, so the rows the views write while it fills are merged twice
  without changing a count.
- :meth:`LocalDays.reset` (a privacy erase, which rebuilds the hourly rows of some days) deletes
  the site's local rows and marks its offsets not ready; the next job run fills them again.
  It waits :attr:`LocalDays.remember` seconds between the two, so that no process still reads
  the rows it deletes.

Until an offset is ready, its days are read from the hourly rollups, as before.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
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
        # Never asked: -inf, not 0 (the monotonic clock may be younger than ``remember``).
        at, offsets = self._ready.get(website_id, (float("-inf"), frozenset()))
        if time.monotonic() - at < self.remember:
            return offsets
        result = await self.store.query_shared(  # a dashboard's panels ask at once
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
        return (await self.prepare_many([(website_id, timezone)], now)).get(website_id, [])

    async def prepare_many(
        self, sites: Sequence[tuple[str, str]], now: datetime | None = None
    ) -> dict[str, list[int]]:
        """List and fill the offsets these sites' timezones use and lack; returns those filled,
        by site. One listing, one settle and one fill for all of them.

        A new site goes the same way as an old one: listing its offsets starts the views, and the
        fill after :attr:`settle` reads whatever an insert wrote to the hourly rollups before its
        views saw the listing (deciding "no rows yet, ready at once" would race such an insert).
        """
        moment = now or datetime.now(UTC)
        result = await self.store.query(
            "SELECT website_id, utc_offset, ready FROM local_day_offsets FINAL"
            " WHERE website_id IN {sites:Array(UUID)}",
            parameters={"sites": sorted({site for site, _ in sites})},
            limited=False,
        )
        listed: dict[tuple[str, int], bool] = {
            (str(site), int(offset)): bool(ready) for site, offset, ready in result.result_rows
        }
        missing = {
            site: wanted
            for site, zone in sites
            if (wanted := [o for o in zone_offsets(zone, moment) if not listed.get((site, o))])
        }
        if not missing:
            return {}
        pairs = [(site, offset) for site, offsets in missing.items() for offset in offsets]
        await self._mark([pair for pair in pairs if pair not in listed], ready=False)
        seen = await self._versions(missing)
        if self.settle:
            await asyncio.sleep(self.settle)
        for rollup in STATES:
            await self.store.command(
                f"INSERT INTO {rollup}_local_daily "  # noqa: S608 — fixed fragments, bound values
                + local_day_select(
                    rollup,
                    f"{rollup}_hourly",
                    "(SELECT p.1 AS website_id, p.2 AS utc_offset"
                    " FROM (SELECT arrayJoin({pairs:Array(Tuple(UUID, Int32))}) AS p))",
                    " WHERE h.website_id IN {sites:Array(UUID)}",
                ),
                parameters={"pairs": pairs, "sites": sorted(missing)},
                settings=self._sync,
            )
        # A reset (privacy erase) since the listing may have deleted what was just filled: its
        # marks are newer than what was seen, and those pairs wait for the next run.
        current = await self._versions(missing)
        filled = [pair for pair in pairs if current.get(pair) == seen.get(pair)]
        # Versioned just after the mark seen, not now: a reset marking the pair between the check
        # above and this insert is newer, and wins (ReplacingMergeTree keeps the latest ``at``).
        await self._mark(filled, ready=True, versions={pair: seen[pair] for pair in filled})
        done: dict[str, list[int]] = {}
        for site, offset in filled:
            done.setdefault(site, []).append(offset)
            self._ready.pop(site, None)
        log.info("local_days.filled", sites=len(done), offsets=len(filled))
        return done

    async def reset(self, website_id: str) -> None:
        """Forget the site's local days (after its hourly rows were rebuilt): the next
        :meth:`prepare` fills them again from the hourly rollups."""
        result = await self.store.query(
            "SELECT utc_offset FROM local_day_offsets FINAL WHERE website_id = {site:UUID}",
            parameters={"site": website_id},
        )
        pairs = [(website_id, int(row[0])) for row in result.result_rows]
        await self._mark(pairs, ready=False)
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
        # Marked again after the delete: a fill that ran meanwhile (its rows deleted) sees a newer
        # mark than the one it listed, and does not mark them ready (see prepare_many).
        await self._mark(pairs, ready=False)

    @property
    def _sync(self) -> dict[str, int]:
        """On a cluster, an insert through a Distributed table lands on its shard before it returns."""
        return {"insert_distributed_sync": 1} if self.store.cluster else {}

    async def _versions(self, sites: Iterable[str]) -> dict[tuple[str, int], Any]:
        """The latest mark's time of each (site, offset) listed for these sites."""
        result = await self.store.query(
            "SELECT website_id, utc_offset, max(at) FROM local_day_offsets"
            " WHERE website_id IN {sites:Array(UUID)} GROUP BY website_id, utc_offset",
            parameters={"sites": sorted(sites)},
            limited=False,
        )
        return {(str(site), int(offset)): at for site, offset, at in result.result_rows}

    async def _mark(
        self,
        pairs: Iterable[tuple[str, int]],
        *,
        ready: bool,
        versions: dict[tuple[str, int], Any] | None = None,
    ) -> None:
        """Mark pairs (not) ready, at now, or each one microsecond after its ``versions`` entry."""
        listed = sorted(pairs)
        if not listed:
            return
        if versions is None:
            at, marks = "now64(6)", [(site, offset, 0) for site, offset in listed]
        else:
            at = "fromUnixTimestamp64Micro(p.3, 'UTC') + toIntervalMicrosecond(1)"
            marks = [(site, offset, _micros(versions[(site, offset)])) for site, offset in listed]
        await self.store.command(
            "INSERT INTO local_day_offsets (website_id, utc_offset, ready, at)"  # noqa: S608 — fixed fragments
            f" SELECT p.1, p.2, {{ready:UInt8}}, {at}"
            " FROM (SELECT arrayJoin({pairs:Array(Tuple(UUID, Int32, Int64))}) AS p)",
            parameters={"pairs": marks, "ready": int(ready)},
            settings=self._sync,
        )


def _micros(moment: datetime) -> int:
    """Microseconds since the epoch of a mark's time (naive ones are UTC, as ClickHouse's are)."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (aware - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)

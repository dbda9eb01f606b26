"""Credited visits kept with the money: the visit each conversion is credited to, under each model.

Attributing money at query time joins every conversion of a range to its visitor's visits over the
lookback window: a scan of the site's visits for two months at each report. Instead, the
``credits`` table keeps, for every conversion (a payment, renewal or refund; a tracker revenue
event) and each model (first, last, last non-direct), the credited visit and its attributes,
under the default lookback (:data:`LOOKBACK`). Revenue by source, campaign or landing page then
reads a few thousand rows.

What a credit depends on, and who refreshes it (:meth:`Credits.refresh`, for a site's visitors):

- the conversion itself and its visitor — the payment writer after each write (a new payment, a
  renewal or refund, a late link by email), and processing after each batch with revenue events;
- the visitor's visits in the window — processing after each batch with a visit that is new or
  whose start moved (an out-of-order event), when that visitor has a conversion whose window it
  falls in (a visit ingested after its payment).

A row is one computation (``computed_at``, a ``ReplacingMergeTree`` version); each refresh
recomputes every conversion of the visitors it is given, so it is idempotent and a replayed batch
refreshes again. Reports use the table only when every conversion of the range with a visitor has
a row computed for its current visitor and anchor (:meth:`Credits.complete`); otherwise — a
lookback other than the default, the exit page (it changes while a visit goes on), a write cut
off before its refresh — they attribute at query time, with the same rules
(:mod:`datafast.domain.analytics.conversions`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import msgspec

from datafast.domain.analytics import conversions
from datafast.domain.analytics.catalog import ATTRIBUTION_DIMENSIONS
from datafast.domain.analytics.conversions import CLOCK_SKEW, DEFAULT_LOOKBACK_DAYS, MODELS, MoneyWindow
from datafast.lib.eventstore import EventStore
from datafast.log import get_logger

__all__ = (
    "CARRIED",
    "KEPT_STALE",
    "LOOKBACK",
    "Credits",
    "backfill_statement",
    "kept_credited",
    "kept_credits",
    "stored_attributed",
)

log = get_logger(__name__)

LOOKBACK = DEFAULT_LOOKBACK_DAYS
"""The lookback credits are kept for (the Stats API's and the attribution report's default)."""
CARRIED: tuple[str, ...] = tuple(
    c for c in dict.fromkeys(ATTRIBUTION_DIMENSIONS.values()) if c != "exit_page"
)
"""The credited visit's ``sessions`` columns kept with a credit (all but the exit page)."""

_TOUCH = ", ".join(f"argMax({c}, version) AS c_{c}" for c in CARRIED)
_PICKED = ", ".join(f"tupleElement(choice.2, {i}) AS {c}" for i, c in enumerate(CARRIED, start=4))
# Models over ``w``, the touches of the window sorted by (start, id), and ``nd`` its non-direct ones
# (tuples: start, visit, channel, carried columns): the same choices as conversions.MODELS.
_CHOICES = "[('first', w[1]), ('last', w[-1]), ('last_non_direct', if(empty(nd), w[-1], nd[-1]))]"
assert set(MODELS) == {"first", "last", "last_non_direct"}

# Fixed fragments only; every value is a bound parameter ({scope}: which conversions).
_COMPUTE = f"""
INSERT INTO credits (website_id, lookback, model, key, visitor_id, anchor_at, session_id,
                     {", ".join(CARRIED)}, computed_at)
WITH conv AS (
    SELECT website_id, payment_key AS key, visitor_id, anchor_at FROM payments FINAL
    WHERE {{scope}} AND visitor_id != ''
    UNION ALL
    SELECT website_id, concat('event:', toString(event_id)), visitor_id, timestamp FROM revenue_events
    WHERE {{scope}} AND visitor_id != ''
), touches AS (
    SELECT website_id, visitor_id,
           groupArray(tuple(at, visit, touch_channel, {", ".join(f"c_{c}" for c in CARRIED)})) AS visits
    FROM (
        SELECT website_id, visitor_id, session_id AS visit, argMax(started_at, version) AS at,
               argMax(channel, version) AS touch_channel, {_TOUCH}
        FROM sessions
        WHERE {{scope}} AND (website_id, visitor_id) IN (SELECT website_id, visitor_id FROM conv)
          AND started_at >= (SELECT min(anchor_at) FROM conv) - toIntervalDay({{lookback}})
          AND started_at <= (SELECT max(anchor_at) FROM conv) + toIntervalSecond({CLOCK_SKEW})
        GROUP BY website_id, visitor_id, session_id HAVING sum(sign) > 0
    )
    GROUP BY website_id, visitor_id
)
SELECT website_id, {{lookback}}, choice.1, key, visitor_id, anchor_at,
       tupleElement(choice.2, 2), {_PICKED}, now64(6)
FROM (
    SELECT c.website_id AS website_id, c.key AS key, c.visitor_id AS visitor_id, c.anchor_at AS anchor_at,
           arraySort(x -> (x.1, x.2), arrayFilter(
               x -> x.1 <= c.anchor_at + toIntervalSecond({CLOCK_SKEW})
                    AND x.1 >= c.anchor_at - toIntervalDay({{lookback}}),
               t.visits)) AS w,
           arrayFilter(x -> x.3 != 'direct', w) AS nd
    FROM conv AS c
    LEFT JOIN touches AS t ON t.website_id = c.website_id AND t.visitor_id = c.visitor_id
)
ARRAY JOIN {_CHOICES} AS choice
"""  # noqa: S608
_REFRESH = _COMPUTE.format(
    scope="website_id = {site:UUID} AND visitor_id IN {visitors:Array(String)}", lookback="{lookback:UInt32}"
)


def backfill_statement(lookback: int) -> str:
    """The credits of every stored conversion (a migration's statement: ``{{``/``}}`` for its formatting)."""
    return _COMPUTE.format(scope="1", lookback=int(lookback)).strip().replace("{", "{{").replace("}", "}}")


_ANCHORED = """
SELECT website_id, visitor_id, toUnixTimestamp64Milli(anchor_at) FROM payments FINAL
WHERE website_id IN {sites:Array(UUID)} AND CRC32(visitor_id) IN {hashes:Array(UInt32)}
  AND anchor_at >= {first:DateTime64(3, 'UTC')} AND anchor_at <= {last:DateTime64(3, 'UTC')}
UNION ALL
SELECT website_id, visitor_id, toUnixTimestamp64Milli(timestamp) FROM revenue_events
WHERE website_id IN {sites:Array(UUID)} AND CRC32(visitor_id) IN {hashes:Array(UInt32)}
  AND timestamp >= {first:DateTime64(3, 'UTC')} AND timestamp <= {last:DateTime64(3, 'UTC')}
"""
"""The conversions (site, visitor, anchor in ms) that a batch's new or moved visits may fall in the
window of: anchored between the earliest start less the skew and the latest start plus the lookback,
of visitors whose id has one of the batch's CRC-32s. The ids go as 32-bit numbers, not strings: a
batch has about a visitor an event, and a thousand strings cost more to bind and parse than the
query costs to run. :meth:`Credits.after_insert` checks each row's visitor and window exactly."""

_STALE = """
SELECT count() FROM conversions AS c
LEFT JOIN (
    SELECT key, visitor_id, anchor_at FROM credits FINAL
    WHERE website_id = {cv_site:UUID} AND lookback = {cv_lookback:UInt32} AND model = {cr_model:String}
) AS k ON k.key = c.key
WHERE c.visitor_id != '' AND (k.key = '' OR k.visitor_id != c.visitor_id OR k.anchor_at != c.anchor_at)
"""
"""Conversions of the range with a visitor but no credit computed for its current visitor and anchor."""

_STORED = """attributed AS (
    SELECT key, session_id{columns}
    FROM credits FINAL
    WHERE website_id = {{cv_site:UUID}} AND lookback = {{cv_lookback:UInt32}} AND model = {{cr_model:String}}
      AND (key, visitor_id, anchor_at) IN (SELECT key, visitor_id, anchor_at FROM conversions)
)"""


_KEPT = """attributed AS (
    SELECT key, visitor_id AS cr_visitor, anchor_at AS cr_anchor, session_id{columns}
    FROM credits FINAL
    WHERE website_id = {{cv_site:UUID}} AND lookback = {{cv_lookback:UInt32}} AND model = {{cr_model:String}}
      AND anchor_at >= {anchors_from}
)"""
# Any bound here only saves reading: a conversion whose credit it leaves out counts as stale.
_ANCHORS_FROM = conversions.VISITS_FROM.replace(" - toIntervalDay({cv_lookback:UInt32}))", ")")
assert _ANCHORS_FROM != conversions.VISITS_FROM

KEPT_STALE = (
    "countIf(c.visitor_id != ''"
    " AND (a.key = '' OR a.cr_visitor != c.visitor_id OR a.cr_anchor != c.anchor_at))"
)
"""Over ``conversions AS c LEFT JOIN attributed AS a`` (:func:`kept_credits`): the conversions with a
visitor but no credit computed for its current visitor and anchor (what :meth:`Credits.complete`
counts). A report read from the kept credits stands only when this is 0 over all its rows."""


def kept_credits(columns: Sequence[str]) -> str:
    """The ``attributed`` CTE as the credits kept for the model bound as ``cr_model``, every one of
    the site's that a conversion of the range can have (``key`` → ``session_id``, ``cr_visitor``,
    ``cr_anchor`` and each of ``columns`` as ``s_<column>``), not yet matched to the conversions:
    joined to them once (``LEFT JOIN attributed AS a ON a.key = c.key``), the same join counts
    :data:`KEPT_STALE` and picks :func:`kept_credited` — so the conversions are computed once,
    where :meth:`Credits.complete` and :func:`stored_attributed` compute them twice more."""
    assert set(columns) <= set(CARRIED)
    return _KEPT.format(columns="".join(f", {c} AS s_{c}" for c in columns), anchors_from=_ANCHORS_FROM)


def kept_credited(column: str) -> str:
    """The credited visit's ``column`` of a conversion ``c`` from its kept credit ``a`` (see
    :func:`kept_credits`); NULL when it has none for its current visitor and anchor, or no visit."""
    return (
        f"if(a.session_id = '' OR a.cr_visitor != c.visitor_id OR a.cr_anchor != c.anchor_at,"
        f" NULL, a.s_{column})"
    )


class _EventRow(msgspec.Struct):
    website_id: str
    visitor_id: str
    revenue: int = 0


class _SessionRow(msgspec.Struct):
    website_id: str
    session_id: str
    visitor_id: str
    sign: int
    version: int
    started_at: float


_events = msgspec.json.Decoder(_EventRow)
_sessions = msgspec.json.Decoder(_SessionRow)


def _touched(blob: bytes) -> tuple[dict[str, set[str]], dict[str, dict[str, float]]]:
    """From a processed batch's rows: (visitors with a revenue event, by site; visitors with a visit
    that is new or whose start moved, by site, each with the earliest such start)."""
    revenue: dict[str, set[str]] = {}
    cancelled: dict[str, float] = {}
    started: list[_SessionRow] = []
    for line in blob.split(b"\n"):
        if line[:1] == b"{":
            if b'"revenue":0,' in line or b'"revenue":0}' in line:
                continue
            event = _events.decode(line)
            if event.revenue > 0 and event.visitor_id:
                revenue.setdefault(event.website_id, set()).add(event.visitor_id)
        elif line[:2] == b"S{":
            row = _sessions.decode(line[1:])
            if row.sign < 0:
                cancelled[row.session_id] = row.started_at
            else:
                started.append(row)
    moved: dict[str, dict[str, float]] = {}
    for row in started:
        if row.version == 1 or cancelled.get(row.session_id, row.started_at) != row.started_at:
            visits = moved.setdefault(row.website_id, {})
            visits[row.visitor_id] = min(visits.get(row.visitor_id, row.started_at), row.started_at)
    return revenue, moved


class Credits:
    """Keeps the ``credits`` table and tells reports whether they may read it."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def refresh(self, visitors: Mapping[str, Iterable[str]]) -> None:
        """Recompute the credits of every conversion of these visitors (site id → visitor ids)."""
        for site, ids in visitors.items():
            wanted = sorted({v for v in ids if v})
            if wanted:
                await self.store.command(_REFRESH, {"site": site, "visitors": wanted, "lookback": LOOKBACK})

    async def backfill(self) -> None:
        """Compute the credits of every stored conversion, every site (what migration 0007 does)."""
        await self.store.command(_COMPUTE.format(scope="1", lookback=int(LOOKBACK)))

    async def after_insert(self, blob: bytes) -> None:
        """Refresh what a processed batch (events and visits just inserted) changed."""
        revenue, moved = _touched(blob)
        stale = {site: set(visitors) for site, visitors in revenue.items()}
        if moved:  # one small query a batch: conversions are few next to visits
            starts = [at for visits in moved.values() for at in visits.values()]
            skew, lookback = CLOCK_SKEW * 1000, LOOKBACK * 86_400_000
            result = await self.store.query(
                _ANCHORED,
                parameters={
                    "sites": sorted(moved),
                    "hashes": sorted({zlib.crc32(v.encode()) for visits in moved.values() for v in visits}),
                    "first": datetime.fromtimestamp(min(starts) - CLOCK_SKEW - 1, UTC),
                    "last": datetime.fromtimestamp(max(starts) + LOOKBACK * 86_400 + 1, UTC),
                },
            )
            for site, visitor, anchor in result.result_rows:
                started = moved.get(str(site), {}).get(visitor)
                # The window of the conversion (anchor - lookback, anchor + skew) holds the visit's
                # start; 1 ms either way for the start's rounding (a refresh too many is harmless).
                if started is not None and -skew - 1 <= anchor - int(started * 1000) <= lookback + 1:
                    stale.setdefault(str(site), set()).add(visitor)
        await self.refresh(stale)

    async def complete(self, window: MoneyWindow) -> bool:
        """Whether every conversion of ``window`` has its credit under ``window.model`` (for the
        visitor and anchor it has now): then reports may read :func:`stored_attributed`."""
        if window.lookback_days != LOOKBACK:
            return False
        result = await self.store.query(
            f"WITH {conversions.CONVERSIONS} {_STALE}",
            parameters={**conversions.parameters(window), "cr_model": window.model},
        )
        return int(result.result_rows[0][0]) == 0


def stored_attributed(columns: Sequence[str]) -> str:
    """The ``attributed`` CTE read from ``credits`` (model bound as ``cr_model``): ``key`` →
    ``session_id`` and each of ``columns`` as ``s_<column>`` (each in :data:`CARRIED`)."""
    assert set(columns) <= set(CARRIED)
    return _STORED.format(columns="".join(f", {c} AS s_{c}" for c in columns))

"""Sessions kept at ingest: the 30-minute rule, each visit's running state, and its table rows.

Every visitor's current session lives in a :class:`SessionTracker` under ``<site>:<visitor>``
(in this process in embedded mode, in Valkey in scaled mode). A request loads the states it
needs once, applies its events in memory (:class:`SessionPlan`) and saves with a
compare-and-set, so two web processes updating one visit at once cannot both win: the loser
loads again and re-applies. Each changed session is written to the ``sessions`` table as a
cancel row (its previous state, sign -1) and the new state (sign +1, next version); see
``migrations/clickhouse/0002_sessions.py`` for how queries read them.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import msgspec
from valkey.asyncio import Valkey

from datafast.domain.ingest.process.rows import EventRow
from datafast.lib.eventstore import EventStore

__all__ = (
    "SESSION_COLUMNS",
    "SESSION_TAG",
    "SESSION_TIMEOUT",
    "Loaded",
    "MemorySessionTracker",
    "SessionPlan",
    "SessionState",
    "SessionTracker",
    "ValkeySessionTracker",
    "create_session_tracker",
    "session_record",
)

SESSION_TIMEOUT = 30 * 60
SESSION_TAG = b"S"
"""Spool records of the ``sessions`` table start with this byte (event rows start with ``{``)."""


class SessionState(msgspec.Struct, array_like=True):
    """A visit as it stands; ``version`` is that of the row last written for it."""

    session_id: str
    visitor_id: str
    version: int
    started_at: float
    ended_at: float
    pageviews: int
    events: int
    goals: int
    revenue: int
    entry_page: str
    entry_at: float
    exit_page: str
    exit_at: float
    hostname: str
    referrer: str
    referrer_source: str
    channel: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    utm_term: str
    utm_content: str
    browser: str
    os: str
    device: str
    country: str
    region: str
    city: str

    @classmethod
    def begin(cls, session_id: str, row: EventRow) -> SessionState:
        """A new visit whose first event is ``row`` (built in one go: this runs for most events)."""
        at = row.timestamp
        pageview = row.event_type == "pageview"
        page = row.pathname if pageview else ""
        return cls(
            session_id,
            row.visitor_id,
            0,
            at,
            at,
            int(pageview),
            1,
            int(row.event_type in ("goal", "purchase")),
            row.revenue,
            page,
            at,
            page,
            at,
            row.hostname,
            row.referrer,
            row.referrer_source,
            row.channel,
            row.utm_source,
            row.utm_medium,
            row.utm_campaign,
            row.utm_term,
            row.utm_content,
            row.browser,
            row.os,
            row.device,
            row.country,
            row.region,
            row.city,
        )

    def add(self, row: EventRow) -> SessionState:
        """This state with one more event (which may be older than the ones already in it)."""
        at = row.timestamp
        changes: dict[str, object] = {
            "events": self.events + 1,
            "ended_at": max(self.ended_at, at),
            "revenue": self.revenue + row.revenue,
        }
        if row.event_type in ("goal", "purchase"):
            changes["goals"] = self.goals + 1
        if at < self.started_at:
            # A delayed event from earlier in the visit: the visit's origin is where it came from.
            changes.update(
                started_at=at,
                hostname=row.hostname,
                referrer=row.referrer,
                referrer_source=row.referrer_source,
                channel=row.channel,
                utm_source=row.utm_source,
                utm_medium=row.utm_medium,
                utm_campaign=row.utm_campaign,
                utm_term=row.utm_term,
                utm_content=row.utm_content,
            )
        if row.event_type == "pageview":
            changes["pageviews"] = self.pageviews + 1
            if not self.pageviews or at < self.entry_at:
                changes.update(entry_page=row.pathname, entry_at=at)
            if not self.pageviews or at >= self.exit_at:
                changes.update(exit_page=row.pathname, exit_at=at)
        return msgspec.structs.replace(self, **changes)

    @property
    def active_until(self) -> float:
        return self.ended_at + SESSION_TIMEOUT


class SessionRow(msgspec.Struct):
    """One ``sessions`` table row (JSONEachRow)."""

    website_id: str
    session_id: str
    visitor_id: str
    sign: int
    version: int
    started_at: float
    ended_at: float
    duration: int
    pageviews: int
    events: int
    is_bounce: int
    hostname: str
    entry_page: str
    exit_page: str
    referrer: str
    referrer_source: str
    channel: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    utm_term: str
    utm_content: str
    browser: str
    os: str
    device: str
    country: str
    region: str
    city: str
    goals: int
    revenue: int


SESSION_COLUMNS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(SessionRow))
_encoder = msgspec.json.Encoder()


def session_record(website_id: str, state: SessionState, sign: int) -> bytes:
    """A spool record for the ``sessions`` table: the tag, then a JSONEachRow line."""
    row = SessionRow(
        website_id=website_id,
        session_id=state.session_id,
        visitor_id=state.visitor_id,
        sign=sign,
        version=state.version,
        started_at=round(state.started_at, 3),
        ended_at=round(state.ended_at, 3),
        duration=int(state.ended_at - state.started_at),
        pageviews=state.pageviews,
        events=state.events,
        # A bounce: the visit was a single event (one pageview and nothing else).
        is_bounce=int(state.events <= 1),
        hostname=state.hostname,
        entry_page=state.entry_page,
        exit_page=state.exit_page,
        referrer=state.referrer,
        referrer_source=state.referrer_source,
        channel=state.channel,
        utm_source=state.utm_source,
        utm_medium=state.utm_medium,
        utm_campaign=state.utm_campaign,
        utm_term=state.utm_term,
        utm_content=state.utm_content,
        browser=state.browser,
        os=state.os,
        device=state.device,
        country=state.country,
        region=state.region,
        city=state.city,
        goals=state.goals,
        revenue=state.revenue,
    )
    return SESSION_TAG + _encoder.encode(row) + b"\n"


class SessionPlan:
    """One request's events applied to the states it loaded; nothing is saved until ``changed`` is."""

    def __init__(self, loaded: Mapping[str, SessionState]) -> None:
        self._loaded = loaded
        self._states = dict(loaded)
        self._touched: dict[tuple[str, str], SessionState | None] = {}
        """(site, session id) → its state before this request (None for a new session)."""
        self._current: dict[tuple[str, str], SessionState] = {}

    def active(self, key: str, at: float) -> bool:
        state = self._states.get(key)
        return state is not None and at < state.active_until

    def assign(self, key: str, at: float, session_id: str | None) -> tuple[str, bool]:
        """(session id for an event of visitor ``key`` at ``at``, whether it joins that session's state).

        With the tracker's session id, that id is the session. Without one, the 30-minute rule
        decides; an event older than the current session's last one joins it (a delayed send).
        """
        state = self._states.get(key)
        if session_id is not None:
            if state is not None and state.session_id != session_id and at < state.started_at:
                # A late event of an earlier session whose state is gone: stored, but the
                # earlier session's row is not rebuilt from one event.
                return session_id, False
            return session_id, True
        if state is not None and at < state.active_until:
            return state.session_id, True
        # Unique, not secret: the fast PRNG is enough (uuid4 asks the kernel for entropy each time).
        return f"{random.getrandbits(64):016x}", True

    def apply(self, key: str, row: EventRow) -> None:
        """Add an event (its ``session_id`` from :meth:`assign`) to the session it belongs to."""
        state = self._states.get(key)
        ident = (row.website_id, row.session_id)
        if state is not None and state.session_id == row.session_id:
            before = self._loaded.get(key)
            self._touched.setdefault(
                ident, before if before is not None and before.session_id == row.session_id else None
            )
            state = state.add(row)
        else:
            self._touched.setdefault(ident, None)
            state = SessionState.begin(row.session_id, row)
        self._states[key] = self._current[ident] = state

    def finish(self) -> tuple[dict[str, SessionState], list[bytes]]:
        """(states to save by key, spool records: a cancel row and a new row per changed session)."""
        records: list[bytes] = []
        final: dict[tuple[str, str], SessionState] = {}
        for ident, state in self._current.items():
            before = self._touched[ident]
            version = (before.version if before is not None else 0) + 1
            final[ident] = msgspec.structs.replace(state, version=version)
            if before is not None:
                records.append(session_record(ident[0], before, -1))
            records.append(session_record(ident[0], final[ident], 1))
        changed = {}
        for key, state in self._states.items():
            if self._loaded.get(key) is not state:
                changed[key] = final[(key.partition(":")[0], state.session_id)]
        return changed, records


Loaded = dict[str, SessionState]


@dataclass(frozen=True, slots=True)
class Announcement:
    """A processed batch of the ingest stream, announced before its insert (see ``stream.py``)."""

    batches: str
    """The hash of token → entry ids."""
    batch_rows: str
    """The hash of token → processed rows."""
    token: str
    ids: bytes
    rows: bytes
    dedupe_prefix: str
    dedupe_keys: list[str]
    dedupe_ttl: int


class SessionTracker(Protocol):
    """Where visitors' current sessions are kept between requests."""

    async def load(self, keys: Iterable[str]) -> Loaded: ...

    async def save(self, loaded: Loaded, changed: Mapping[str, SessionState]) -> bool:
        """Store ``changed`` if none of those keys moved since ``loaded``; False when one did."""
        ...

    async def forget(self, keys: Iterable[str]) -> None:
        """Drop these visits (a privacy erase): the visitor's next event starts a new one."""
        ...


class MemorySessionTracker:
    """Kept in this process (embedded mode has one process); recovered from ClickHouse on start.

    At most ``max_entries`` visits are kept, the most recently active: a flood of made-up
    visitor ids costs bounded memory (the least recently active visits are dropped; their
    visitors' next events start new sessions).
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self._max_entries = max_entries
        self._sessions: OrderedDict[str, SessionState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    async def load(self, keys: Iterable[str]) -> Loaded:
        return {key: state for key in keys if (state := self._sessions.get(key)) is not None}

    async def save(self, loaded: Loaded, changed: Mapping[str, SessionState]) -> bool:
        if any(self._sessions.get(key) is not loaded.get(key) for key in changed):
            return False
        for key, state in changed.items():
            self._sessions[key] = state
            self._sessions.move_to_end(key)
        while len(self._sessions) > self._max_entries:
            self._sessions.popitem(last=False)
        return True

    async def forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._sessions.pop(key, None)

    async def recover(self, store: EventStore, now: float | None = None) -> int:
        """Load the sessions still open (last event under 30 minutes ago) from ClickHouse."""
        since = datetime.fromtimestamp((now or time.time()) - SESSION_TIMEOUT, UTC)
        result = await store.query(
            "SELECT toString(website_id) AS site, session_id, visitor_id, version,"
            " toUnixTimestamp64Milli(started_at) / 1000 AS started,"
            " toUnixTimestamp64Milli(ended_at) / 1000 AS ended,"
            " pageviews, events, goals, revenue, entry_page, exit_page, hostname, referrer,"
            " referrer_source, channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content,"
            " browser, os, device, country, region, city"
            " FROM sessions FINAL WHERE ended_at >= {since:DateTime64(3, 'UTC')} AND sign = 1"
            " ORDER BY ended_at",
            parameters={"since": since},
        )
        for row in result.named_results():
            state = SessionState(
                session_id=row["session_id"],
                visitor_id=row["visitor_id"],
                version=row["version"],
                started_at=row["started"],
                ended_at=row["ended"],
                pageviews=row["pageviews"],
                events=row["events"],
                goals=row["goals"],
                revenue=row["revenue"],
                entry_page=row["entry_page"],
                entry_at=row["started"],
                exit_page=row["exit_page"],
                exit_at=row["ended"],
                **{name: row[name] for name in _ORIGIN_FIELDS},
            )
            key = f"{row['site']}:{row['visitor_id']}"
            self._sessions[key] = state  # the latest wins
            self._sessions.move_to_end(key)
        while len(self._sessions) > self._max_entries:
            self._sessions.popitem(last=False)
        return len(result.result_rows)


_ORIGIN_FIELDS = (
    "hostname",
    "referrer",
    "referrer_source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "browser",
    "os",
    "device",
    "country",
    "region",
    "city",
)

# Compare-and-set of several keys at once. KEYS: session keys; ARGV[1]: TTL in seconds, then
# the values each key must still hold ("" = absent), then the values to store ("" = delete).
_COMPARE_AND_SET = """
local n = #KEYS
for i = 1, n do
  if (redis.call('GET', KEYS[i]) or '') ~= ARGV[1 + i] then return 0 end
end
for i = 1, n do
  local value = ARGV[1 + n + i]
  if value == '' then redis.call('DEL', KEYS[i]) else redis.call('SET', KEYS[i], value, 'EX', ARGV[1]) end
end
return 1
"""

# The same for a processed batch, which is also announced and whose events' de-duplication keys
# are marked. KEYS: n session keys, the batches and rows hashes, then the de-duplication keys.
# ARGV: n, session TTL, de-duplication TTL, token, entry ids, rows, then n expected and n new
# session values. Fails (0) if a session moved or an event key was marked meanwhile.
_SAVE_AND_ANNOUNCE = """
local n = tonumber(ARGV[1])
for i = 1, n do
  if (redis.call('GET', KEYS[i]) or '') ~= ARGV[6 + i] then return 0 end
end
for i = n + 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
for i = 1, n do
  local value = ARGV[6 + n + i]
  if value == '' then redis.call('DEL', KEYS[i]) else redis.call('SET', KEYS[i], value, 'EX', ARGV[2]) end
end
for i = n + 3, #KEYS do
  redis.call('SET', KEYS[i], '1', 'EX', ARGV[3])
end
redis.call('HSET', KEYS[n + 1], ARGV[4], ARGV[5])
redis.call('HSET', KEYS[n + 2], ARGV[4], ARGV[6])
return 1
"""

_pack = msgspec.msgpack.Encoder()
_unpack = msgspec.msgpack.Decoder(SessionState)


class ValkeySessionTracker:
    """Shared by every web process (scaled mode): a visitor's requests may reach any of them."""

    def __init__(self, client: Valkey, prefix: str = "datafast:session:") -> None:
        self._client = client
        self._prefix = prefix
        self._cas = client.register_script(_COMPARE_AND_SET)
        self._save_and_announce = client.register_script(_SAVE_AND_ANNOUNCE)
        self._raw: dict[int, dict[str, bytes]] = {}

    async def load(self, keys: Iterable[str]) -> Loaded:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        values: list[bytes | None] = await self._client.mget([self._prefix + key for key in wanted])
        return {key: _unpack.decode(raw) for key, raw in zip(wanted, values, strict=True) if raw is not None}

    async def save(self, loaded: Loaded, changed: Mapping[str, SessionState]) -> bool:
        if not changed:
            return True
        return await self._compare_and_set(
            {key: _pack.encode(loaded[key]) if key in loaded else b"" for key in changed},
            {key: _pack.encode(state) for key, state in changed.items()},
        )

    async def forget(self, keys: Iterable[str]) -> None:
        if names := [self._prefix + key for key in keys]:
            await self._client.delete(*names)

    async def save_and_announce(
        self,
        loaded: Loaded,
        changed: Mapping[str, SessionState],
        batch: Announcement,
    ) -> bool:
        """``save``, and in the same atomic step announce ``batch`` and mark its events' keys stored.

        A worker that dies after this leaves a batch whose sessions are saved, whose events are
        marked, *and* whose rows are kept: whoever takes it over inserts those rows and never
        applies the batch twice. A worker that dies before it leaves none of the three.
        """
        keys = list(changed)
        args: list[bytes | int | str] = [len(keys), SESSION_TIMEOUT + 60, batch.dedupe_ttl, batch.token]
        args += [batch.ids, batch.rows]
        args += [_pack.encode(loaded[key]) if key in loaded else b"" for key in keys]
        args += [_pack.encode(changed[key]) for key in keys]
        script_keys = [*(self._prefix + key for key in keys), batch.batches, batch.batch_rows]
        script_keys += [batch.dedupe_prefix + key for key in batch.dedupe_keys]
        return bool(await self._save_and_announce(keys=script_keys, args=args))

    async def _compare_and_set(self, expected: dict[str, bytes], values: dict[str, bytes]) -> bool:
        keys = list(expected)
        args: list[bytes | int] = [SESSION_TIMEOUT + 60]
        args += [expected[key] for key in keys]
        args += [values[key] for key in keys]
        done = await self._cas(keys=[self._prefix + key for key in keys], args=args)
        return bool(done)


def create_session_tracker(valkey: Valkey | None) -> MemorySessionTracker | ValkeySessionTracker:
    return MemorySessionTracker() if valkey is None else ValkeySessionTracker(valkey)

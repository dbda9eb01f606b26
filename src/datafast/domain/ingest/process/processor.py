"""Processing: captured requests, read from the log in batches, become ClickHouse rows.

One batch at a time: de-duplicate (a retried send is stored once), enrich (browser, OS and
device from the User-Agent; source and channel from the referrer and UTM fields — each cached
per distinct value), plan sessions (the 30-minute rule, on the states of the visitors the
batch touches, loaded once per batch), and encode the ``events`` rows and the ``sessions``
cancel/state rows; a tracker ``scroll`` report becomes a ``page_scrolls`` row instead (it is no
event of the visit). The caller makes the result durable together with the new session states
(:meth:`Processor.run`'s ``persist``) before inserting it, so a crash never applies a batch
to the sessions twice. Nothing here knows about HTTP or where the log lives.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import msgspec

from datafast.domain.ingest.capture import Captured, CapturedEvent, decode_captured, split_url
from datafast.domain.ingest.capture.schemas import TrackEvent
from datafast.domain.ingest.capture.sites import SiteDirectory, TrackedSite
from datafast.domain.ingest.process.dedupe import Deduplicator
from datafast.domain.ingest.process.referrers import classify
from datafast.domain.ingest.process.rows import EventRow, ScrollRow, encode_row, encode_scroll
from datafast.domain.ingest.process.sessions import Loaded, SessionPlan, SessionState, SessionTracker
from datafast.lib.metrics import IngestMetrics
from datafast.lib.ua import UserAgent, parse_user_agent

__all__ = ("Processed", "Processor", "RealtimeEvent", "SessionContention")

_UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_SESSION_ATTEMPTS = 20
YIELD_EVERY = 200


class SessionContention(RuntimeError):
    """Other processors kept changing the same visits: the batch stays in the log and is retried."""


class RealtimeEvent(msgspec.Struct):
    id: str
    type: str
    name: str
    pathname: str
    country: str
    city: str
    source: str
    device: str
    visitor_id: str
    timestamp: float
    revenue: int
    currency: str


_realtime = msgspec.json.Encoder()


@dataclass(slots=True)
class Processed:
    """A batch ready to insert: what ``insert_rows`` reads, and what changes once it is durable."""

    blob: bytes
    """Event rows (JSONEachRow), then the tagged session rows."""
    events: int
    duplicates: int
    keys: list[str] = field(default_factory=list)
    """De-duplication keys of its events: to be marked stored with the batch."""
    loaded: Loaded = field(default_factory=dict)
    changed: dict[str, SessionState] = field(default_factory=dict)
    realtime: dict[str, bytes] = field(default_factory=dict)
    """website id → its events of the batch as one JSON array (one message per site)."""


Persist = Callable[[Processed], Awaitable[bool]]
"""Make a processed batch durable with its session states; False when the states moved meanwhile."""


class Processor:
    def __init__(
        self,
        sites: SiteDirectory,
        deduplicator: Deduplicator,
        sessions: SessionTracker,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.sites = sites
        self.deduplicator = deduplicator
        self.sessions = sessions
        self.metrics = metrics or IngestMetrics()

    async def run(self, records: list[bytes], persist: Persist) -> Processed:
        """Process a batch of log records; ``persist`` has made the result durable when this returns.

        De-duplication and planning repeat (on fresh states) while another processor changed
        one of the batch's visits, or stored one of its event keys, first.
        """
        requests = [decode_captured(record) for record in records]
        for attempt in range(MAX_SESSION_ATTEMPTS):
            if attempt:  # jittered backoff: processors racing for one visit stop colliding
                await asyncio.sleep(random.uniform(0, 0.002 * attempt))
            kept, keys, duplicates = await self._fresh(requests)
            processed = await self._plan(kept)
            processed.keys, processed.duplicates = keys, duplicates
            if await persist(processed):
                self.metrics.duplicates.inc(duplicates)
                return processed
        raise SessionContention(f"sessions changed under {MAX_SESSION_ATTEMPTS} attempts")

    async def _fresh(
        self, requests: list[Captured]
    ) -> tuple[list[tuple[Captured, CapturedEvent, TrackedSite]], list[str], int]:
        """(events not stored before with their sites, their de-duplication keys, duplicates)."""
        keys = [e.dedupe_key for request in requests for e in request.events if e.dedupe_key]
        stored = dict(zip(keys, await self.deduplicator.seen(keys), strict=True)) if keys else {}
        kept = []
        new_keys: set[str] = set()
        duplicates = 0
        for request in requests:
            for captured in request.events:
                # In order: the same id twice in one batch is stored once (the first).
                if captured.dedupe_key:
                    if stored[captured.dedupe_key] or captured.dedupe_key in new_keys:
                        duplicates += 1
                        continue
                    new_keys.add(captured.dedupe_key)
                site = await self.sites.get(captured.event.website_id)
                if site is None:  # deleted since it was captured: its events go with it
                    continue
                kept.append((request, captured, site))
        return kept, sorted(new_keys), duplicates

    async def _plan(self, kept: list[tuple[Captured, CapturedEvent, TrackedSite]]) -> Processed:
        wanted = set()
        for _, captured, site in kept:
            wanted.add(f"{site.id}:{captured.visitor_id}")
            if captured.earlier_id:
                wanted.add(f"{site.id}:{captured.earlier_id}")
        loaded = await self.sessions.load(wanted)
        plan = SessionPlan(loaded)
        rows = []
        scrolls = []
        for n, (request, captured, site) in enumerate(kept, 1):
            if captured.event.event_type == SCROLL:
                if (scroll := _scroll_row(captured, site)) is not None:
                    scrolls.append(encode_scroll(scroll))
            else:
                rows.append(_row(plan, request, captured, site))
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # embedded: capture's requests go on while a batch is planned
        changed, session_records = plan.finish()
        by_site: dict[str, list[RealtimeEvent]] = {}
        for row in rows:
            by_site.setdefault(row.website_id, []).append(_realtime_event(row))
        blob = b"".join(encode_row(row) for row in rows) + b"".join(session_records) + b"".join(scrolls)
        return Processed(
            blob=blob,
            events=len(rows),
            duplicates=0,
            loaded=loaded,
            changed=changed,
            realtime={site: _realtime.encode(events) for site, events in by_site.items()},
        )


def _row(plan: SessionPlan, request: Captured, captured: CapturedEvent, site: TrackedSite) -> EventRow:
    """The stored row of one event; its session in ``plan`` is updated with it."""
    event, at = captured.event, captured.at
    site_key = str(site.id)
    page = split_url(event.page_url)
    query = dict(_query(page.query))
    for name in _UTM_FIELDS:
        if (value := getattr(event, name)) is not None:
            query[name] = value  # the tracker may send UTM fields beside the URL
    visitor_id = captured.visitor_id
    if (
        captured.earlier_id
        and not plan.active(f"{site_key}:{visitor_id}", at)
        and plan.active(f"{site_key}:{captured.earlier_id}", at)
    ):
        visitor_id = captured.earlier_id  # a visit crossing midnight stays one visitor
    key = f"{site_key}:{visitor_id}"
    session_id, joins = plan.assign(key, at, event.session_id)
    source = classify(event.referrer or "", query, site.is_self)
    agent: UserAgent = parse_user_agent(request.user_agent)
    revenue = round(event.revenue * 100) if event.revenue is not None else 0
    row = EventRow(
        website_id=site_key,
        event_id=captured.event_id,
        event_type=event.event_type
        if event.event_type in ("pageview", "goal", "purchase", "identify")
        else "custom",
        event_name=event.goal_name or (event.event_type if event.event_type != "pageview" else ""),
        timestamp=at,
        visitor_id=visitor_id,
        session_id=session_id,
        hostname=(page.hostname or "").lower(),
        pathname=_pathname(page.path, page.fragment),
        page_url=event.page_url,
        referrer=event.referrer or "",
        referrer_source=source.source,
        channel=source.channel,
        utm_source=query.get("utm_source", "")[:100],
        utm_medium=query.get("utm_medium", "")[:100],
        utm_campaign=query.get("utm_campaign", "")[:200],
        utm_term=query.get("utm_term", "")[:200],
        utm_content=query.get("utm_content", "")[:200],
        browser=agent.browser,
        browser_version=agent.browser_version,
        os=agent.os,
        os_version=agent.os_version,
        device=agent.device,
        country=request.country,
        region=request.region,
        city=request.city,
        goal_name=event.goal_name or "",
        props=_props(event),
        revenue=revenue,
        currency=(event.currency or (site.currency if revenue else "")).upper(),
    )
    if joins:
        plan.apply(key, row)
    return row


SCROLL = "scroll"
"""The tracker's scroll extension reports with this event type: ``props`` ``depth`` (0 to 100) and
``url`` (the page measured: a single-page app may have moved on when it is sent)."""


def _scroll_row(captured: CapturedEvent, site: TrackedSite) -> ScrollRow | None:
    """The ``page_scrolls`` row of a scroll report, or None when it is not a valid one."""
    event = captured.event
    props = event.props or {}
    depth = props.get("depth")
    try:
        percent = int(str(depth))
    except ValueError:
        return None
    if not 0 < percent <= 100:
        return None
    page = split_url(str(props.get("url") or event.page_url))
    return ScrollRow(
        website_id=str(site.id),
        timestamp=captured.at,
        visitor_id=captured.visitor_id,
        hostname=(split_url(event.page_url).hostname or "").lower(),  # the host capture checked
        pathname=_pathname(page.path, page.fragment),
        depth=percent,
    )


@functools.lru_cache(maxsize=50_000)
def _query(query: str) -> tuple[tuple[str, str], ...]:
    return tuple(parse_qsl(query))


def _prop(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pathname(path: str, fragment: str) -> str:
    """The path, with a hash route (``#/pricing``, ``#!/pricing``) when the URL has one.

    The tracker sends the fragment only in hash mode (``data-hash``); a plain anchor is no route.
    """
    path = path or "/"
    return f"{path}#{fragment}" if fragment.startswith(("/", "!/")) else path


def _props(event: TrackEvent) -> dict[str, str]:
    props = {k: _prop(v) for k, v in (event.props or {}).items()}
    if event.event_type == "identify" and "email" in props:
        # Only a hash of the address is stored: payments without visitor metadata are matched to the
        # visitor through it (lowercased and trimmed, as the payment side normalises it too).
        email = props.pop("email").strip().lower()
        if email:
            props["email_hash"] = hashlib.sha256(email.encode()).hexdigest()
    return props


def _realtime_event(row: EventRow) -> RealtimeEvent:
    return RealtimeEvent(
        id=row.event_id,
        type=row.event_type,
        name=row.event_name,
        pathname=row.pathname,
        country=row.country,
        city=row.city,
        source=row.referrer_source,
        device=row.device,
        visitor_id=row.visitor_id,
        timestamp=row.timestamp,
        revenue=row.revenue,
        currency=row.currency,
    )

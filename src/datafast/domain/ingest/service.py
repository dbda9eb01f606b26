"""The ingest rules: which events are accepted, how they are enriched, and what is stored.

``IngestService.accept`` runs per request: site and hostname checks, bot filtering,
timestamps, visitor/session ids, enrichment, de-duplication, then the durable spool and the
realtime channel. Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import msgspec

from datafast.domain.ingest.dedupe import Deduplicator
from datafast.domain.ingest.referrers import classify
from datafast.domain.ingest.rows import EventRow, encode_row
from datafast.domain.ingest.schemas import FieldError, TrackEvent
from datafast.domain.ingest.sessions import SessionPlan, SessionTracker
from datafast.domain.ingest.sites import SiteDirectory, TrackedSite
from datafast.domain.ingest.spool import FileSpool
from datafast.domain.ingest.stream import StreamSpool
from datafast.domain.ingest.visitors import SaltBook, cookieless_visitor_id
from datafast.lib.geo import GeoLocator, Location
from datafast.lib.metrics import IngestMetrics
from datafast.lib.pubsub import PubSub
from datafast.lib.ua import UserAgent, parse_user_agent

__all__ = (
    "Accepted",
    "IngestService",
    "Rejected",
    "RequestInfo",
    "SessionContention",
    "SiteNotFound",
)

MAX_AGE = 72 * 3600
_UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
FUTURE_TOLERANCE = 5.0
_EVENT_KEY = b"datafast event id"  # a fixed key: the same client id always gives the same event id


@dataclass(frozen=True, slots=True)
class RequestInfo:
    ip: str
    user_agent: str
    received_at: float
    """Server time, epoch seconds."""


@dataclass(slots=True)
class Accepted:
    ids: list[str]
    dropped: Counter[str]


class Rejected(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.key}: {e.message}" for e in errors))
        self.errors = errors


class SiteNotFound(LookupError):
    pass


class SessionContention(RuntimeError):
    """Other processes kept changing the same visits: the request is answered 503 and retried."""


MAX_SESSION_ATTEMPTS = 20


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


class IngestService:
    def __init__(
        self,
        sites: SiteDirectory,
        spool: FileSpool | StreamSpool,
        deduplicator: Deduplicator,
        salts: SaltBook,
        sessions: SessionTracker,
        geo: GeoLocator,
        pubsub: PubSub,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.sites = sites
        self.spool = spool
        self.deduplicator = deduplicator
        self.salts = salts
        self.sessions = sessions
        self.geo = geo
        self.pubsub = pubsub
        self.metrics = metrics or IngestMetrics()

    async def accept(self, events: list[TrackEvent], sent_at: float | None, request: RequestInfo) -> Accepted:
        sites = await self._sites(events)
        self._check_hostnames(events, sites)
        dropped: Counter[str] = Counter()
        agent = parse_user_agent(request.user_agent)
        if agent.is_bot:
            dropped["bot"] += len(events)
            self._count_dropped(dropped)
            return Accepted([], dropped)

        timed: list[tuple[TrackEvent, TrackedSite, float]] = []
        for event in events:
            at = self._timestamp(event, sent_at, request.received_at)
            if isinstance(at, str):
                dropped[at] += 1
            else:
                timed.append((event, sites[event.website_id], at))
        # Cookieless ids only for sites with an event that has no tracker cookie (the rarer case).
        today_salt, yesterday_salt = await self.salts.salts(request.received_at)
        cookieless = {str(site.id) for event, site, _ in timed if event.visitor_id is None}
        today_ids = {
            site_key: cookieless_visitor_id(today_salt, site_key, request.ip, request.user_agent)
            for site_key in cookieless
        }
        earlier_ids = (
            {
                site_key: cookieless_visitor_id(yesterday_salt, site_key, request.ip, request.user_agent)
                for site_key in cookieless
            }
            if yesterday_salt is not None
            else {}
        )

        # De-duplication first: a retried event must not count in its session a second time.
        identities = [
            self._identity(site, event, event.visitor_id or today_ids[str(site.id)])
            for event, site, _ in timed
        ]
        checked = [key for key, _ in identities if key is not None]
        verdicts = iter(await self.deduplicator.first_seen(checked) if checked else [])
        # In order: the same id twice in one batch is stored once (the first), not dropped twice.
        fresh = [key is None or next(verdicts) for key, _ in identities]
        kept = [
            (event, site, at, event_id)
            for (event, site, at), (_, event_id), first in zip(timed, identities, fresh, strict=True)
            if first
        ]
        new_keys = [key for (key, _), first in zip(identities, fresh, strict=True) if first and key]
        ids = ["evt_" + event_id.replace("-", "") for _, event_id in identities]
        self.metrics.duplicates.inc(len(timed) - len(kept))
        self._count_dropped(dropped)
        if not kept:
            return Accepted(ids, dropped)

        try:
            location = self.geo.locate(request.ip)
            wanted = {
                f"{site.id}:{event.visitor_id or today_ids[str(site.id)]}" for event, site, _, _ in kept
            }
            wanted.update(f"{site_key}:{visitor}" for site_key, visitor in earlier_ids.items())
            # Load, apply, compare-and-set: another process changing one of these visits meanwhile
            # makes the save fail, and the request applies its events again on the fresh states.
            for attempt in range(MAX_SESSION_ATTEMPTS):
                if attempt:  # jittered backoff: requests racing for one visit stop colliding
                    await asyncio.sleep(random.uniform(0, 0.002 * attempt))
                loaded = await self.sessions.load(wanted)
                plan = SessionPlan(loaded)
                rows = [
                    self._row(plan, event, site, at, event_id, agent, location, today_ids, earlier_ids)
                    for event, site, at, event_id in kept
                ]
                changed, session_records = plan.finish()
                if await self.sessions.save(loaded, changed):
                    break
            else:
                raise SessionContention(f"sessions changed under {MAX_SESSION_ATTEMPTS} attempts")
            try:
                records = [encode_row(row) for row in rows]
                # One record holds all of a request's session rows: a torn spool tail can never
                # keep a session's cancel row without its new state.
                records[-1] += b"".join(session_records)
                await self.spool.append(records)
            except BaseException:
                await self.sessions.restore(changed, loaded)
                raise
        except BaseException:
            # Not stored: a retry must not be taken for a duplicate.
            await self.deduplicator.forget(new_keys)
            raise
        self.metrics.accepted.inc(len(rows))
        # One message per site and request (a JSON array of events): one round trip, not one per event.
        by_site: dict[str, list[RealtimeEvent]] = {}
        for row in rows:
            by_site.setdefault(row.website_id, []).append(_realtime_event(row))
        for website_id, realtime in by_site.items():
            await self.pubsub.publish(f"site:{website_id}", _realtime.encode(realtime))
        return Accepted(ids, dropped)

    def _count_dropped(self, dropped: Counter[str]) -> None:
        for reason, count in dropped.items():
            self.metrics.dropped.labels(reason).inc(count)

    def _row(
        self,
        plan: SessionPlan,
        event: TrackEvent,
        site: TrackedSite,
        at: float,
        event_id: str,
        agent: UserAgent,
        location: Location,
        today_ids: dict[str, str],
        earlier_ids: dict[str, str],
    ) -> EventRow:
        """The stored row of one event; its session in ``plan`` is updated with it."""
        site_key = str(site.id)
        page = _split(event.page_url)
        query = dict(_query(page.query))
        for name in _UTM_FIELDS:
            if (value := getattr(event, name)) is not None:
                query[name] = value  # the tracker may send UTM fields beside the URL
        visitor_id = event.visitor_id or self._cookieless(plan, site_key, today_ids, earlier_ids, at)
        key = f"{site_key}:{visitor_id}"
        session_id, joins = plan.assign(key, at, event.session_id)
        source = classify(event.referrer or "", query, site.is_self)
        revenue = round(event.revenue * 100) if event.revenue is not None else 0
        row = EventRow(
            website_id=site_key,
            event_id=event_id,
            event_type=event.event_type
            if event.event_type in ("pageview", "goal", "purchase", "identify")
            else "custom",
            event_name=event.goal_name or (event.event_type if event.event_type != "pageview" else ""),
            timestamp=round(at, 3),
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
            country=location.country,
            region=location.region,
            city=location.city,
            goal_name=event.goal_name or "",
            props=_props(event),
            revenue=revenue,
            currency=(event.currency or (site.currency if revenue else "")).upper(),
        )
        if joins:
            plan.apply(key, row)
        return row

    async def _sites(self, events: list[TrackEvent]) -> dict[str, TrackedSite]:
        sites: dict[str, TrackedSite] = {}
        for website_id in {e.website_id for e in events}:
            site = await self.sites.get(website_id)
            if site is None:
                self.metrics.rejected.labels("unknown_site").inc()
                raise SiteNotFound(website_id)
            sites[website_id] = site
        return sites

    def _check_hostnames(self, events: list[TrackEvent], sites: dict[str, TrackedSite]) -> None:
        errors = []
        for index, event in enumerate(events):
            prefix = f"[{index}]." if len(events) > 1 else ""
            try:
                parts = _split(event.page_url)
            except ValueError:  # e.g. "http://[x/": an unclosed IPv6 bracket
                errors.append(FieldError(prefix + "page_url", "expected an absolute http(s) URL"))
                continue
            if parts.scheme not in ("http", "https") or not parts.hostname:
                errors.append(FieldError(prefix + "page_url", "expected an absolute http(s) URL"))
            elif not sites[event.website_id].owns(parts.hostname):
                errors.append(
                    FieldError(
                        prefix + "page_url",
                        f"{parts.hostname} is not a hostname of site {sites[event.website_id].domain}",
                    )
                )
        if errors:
            self.metrics.rejected.labels("hostname").inc()
            raise Rejected(errors)

    @staticmethod
    def _timestamp(event: TrackEvent, sent_at: float | None, now: float) -> float | str:
        """Epoch seconds of the event, or why it is dropped."""
        sent = event.sent_at if event.sent_at is not None else sent_at
        if event.timestamp is None or sent is None:
            return now
        # Shift the client's clock onto ours: what it calls sent_at is our receive time.
        at = (event.timestamp - sent) / 1000 + now
        if at > now + FUTURE_TOLERANCE:
            return "future"
        if at < now - MAX_AGE:
            return "too_old"
        return at

    @staticmethod
    def _cookieless(
        plan: SessionPlan, site_key: str, today: dict[str, str], earlier: dict[str, str], at: float
    ) -> str:
        visitor_id = today[site_key]
        if (
            site_key in earlier
            and not plan.active(f"{site_key}:{visitor_id}", at)
            and plan.active(f"{site_key}:{earlier[site_key]}", at)
        ):
            return earlier[site_key]  # a visit crossing midnight stays one visitor
        return visitor_id

    @staticmethod
    def _identity(site: TrackedSite, event: TrackEvent, visitor_id: str) -> tuple[str | None, str]:
        """(dedupe key or None, event uuid). A client id makes both stable across retries."""
        if event.event_id is not None:
            name = f"{site.id}|{event.event_id}"
        elif event.timestamp is not None:
            # No id, but a client timestamp: a retry of the same send has the same content.
            name = "|".join(
                map(
                    str,
                    (site.id, visitor_id, event.event_type, event.page_url, event.goal_name, event.timestamp),
                )
            )
        else:
            return None, str(uuid.UUID(int=random.getrandbits(128), version=4))
        digest = hashlib.blake2b(name.encode(), digest_size=16, key=_EVENT_KEY).hexdigest()
        return digest, f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"


# Pages and their query strings repeat a lot: parse each once.
_split = functools.lru_cache(maxsize=50_000)(urlsplit)


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

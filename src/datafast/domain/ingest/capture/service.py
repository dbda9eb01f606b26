"""Capture: the part of ingest that runs while the visitor's request is open.

It checks the events (site, hostname, bot, clock), derives what needs the request itself and
must never be stored — the cookieless visitor id (a salted hash of IP and User-Agent) and the
location of the IP — and appends one :class:`Captured` record per request to the durable log
(the embedded spool or the scaled Valkey stream). Everything else — de-duplication, User-Agent
and referrer enrichment, sessions, the ClickHouse rows — is :mod:`datafast.domain.ingest.process`,
run in batches from the log. The raw IP is never in the log; the User-Agent is, until the
record is processed and the log trimmed.
"""

from __future__ import annotations

import functools
import hashlib
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import msgspec

from datafast.domain.ingest.capture.schemas import FieldError, TrackEvent
from datafast.domain.ingest.capture.sites import SiteDirectory, TrackedSite
from datafast.domain.ingest.capture.visitors import SaltBook, cookieless_visitor_id
from datafast.lib.geo import GeoLocator
from datafast.lib.metrics import IngestMetrics
from datafast.lib.ua import parse_user_agent

__all__ = (
    "Accepted",
    "AdmissionGate",
    "Capture",
    "Captured",
    "CapturedEvent",
    "EventLog",
    "Overloaded",
    "PaymentRequired",
    "Rejected",
    "RequestInfo",
    "SiteNotFound",
    "decode_captured",
    "split_url",
)

MAX_AGE = 72 * 3600
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


class PaymentRequired(PermissionError):
    """Hosted mode: the site's account is unpaid or canceled past its grace (the reason is the message)."""


AdmissionGate = Callable[[uuid.UUID], Awaitable[str | None]]
"""Why a site's events are refused (None: accepted); must answer from a cache, not a query per call."""


class Overloaded(RuntimeError):
    """Nothing can be appended now (the log is at its bound, or unreachable): 503 after ``retry_after`` s."""

    def __init__(self, reason: str, retry_after: int = 5) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class CapturedEvent(msgspec.Struct, array_like=True):
    event: TrackEvent
    at: float
    """Epoch seconds on the server's clock."""
    visitor_id: str
    """The tracker's visitor id, else today's cookieless id."""
    earlier_id: str
    """Yesterday's cookieless id ("" with a tracker id or no salt left): a visit crossing midnight."""
    dedupe_key: str
    """"" when the event has no stable identity (no client id or timestamp)."""
    event_id: str


class Captured(msgspec.Struct, array_like=True):
    """One request's events as the log keeps them until processing has stored them."""

    user_agent: str
    country: str
    region: str
    city: str
    events: list[CapturedEvent]


_encode = msgspec.msgpack.Encoder().encode
_decoder = msgspec.msgpack.Decoder(Captured)


def decode_captured(record: bytes) -> Captured:
    return _decoder.decode(record)


class EventLog(Protocol):
    """Where capture appends (the embedded spool, the scaled stream): durable when it returns."""

    async def append(self, records: list[tuple[str, bytes]]) -> None:
        """``records``: (website id, record) pairs; all or none are appended."""
        ...

    def overloaded(self) -> str | None:
        """Why no more may be appended now (the backlog is at its bound), else None."""
        ...


class Capture:
    def __init__(
        self,
        sites: SiteDirectory,
        log: EventLog,
        salts: SaltBook,
        geo: GeoLocator,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self.sites = sites
        self.log = log
        self.salts = salts
        self.geo = geo
        self.metrics = metrics or IngestMetrics()
        self.gate: AdmissionGate | None = None
        """Set by the app in hosted mode (``BILLING=stripe``)."""

    async def accept(self, events: list[TrackEvent], sent_at: float | None, request: RequestInfo) -> Accepted:
        sites = await self._sites(events)
        self._check_hostnames(events, sites)
        if self.gate is not None:
            for site in sites.values():
                if (reason := await self.gate(site.id)) is not None:
                    self.metrics.rejected.labels("payment_required").inc()
                    raise PaymentRequired(reason)
        dropped: Counter[str] = Counter()
        if parse_user_agent(request.user_agent).is_bot:  # cached per User-Agent string
            dropped["bot"] += len(events)
            self._count_dropped(dropped)
            return Accepted([], dropped)
        if (reason := self.log.overloaded()) is not None:
            self.metrics.rejected.labels("overloaded").inc()
            raise Overloaded(reason)
        today, yesterday = await self.salts.salts(request.received_at)
        ids: list[str] = []
        captured: list[CapturedEvent] = []
        cookieless: dict[str, tuple[str, str]] = {}
        for event in events:
            at = _timestamp(event, sent_at, request.received_at)
            if isinstance(at, str):
                dropped[at] += 1
                continue
            visitor_id, earlier_id = event.visitor_id, ""
            if visitor_id is None:
                if event.website_id not in cookieless:
                    site_key = str(sites[event.website_id].id)
                    cookieless[event.website_id] = (
                        cookieless_visitor_id(today, site_key, request.ip, request.user_agent),
                        cookieless_visitor_id(yesterday, site_key, request.ip, request.user_agent)
                        if yesterday is not None
                        else "",
                    )
                visitor_id, earlier_id = cookieless[event.website_id]
            key, event_id = _identity(sites[event.website_id], event, visitor_id)
            ids.append("evt_" + event_id.replace("-", ""))
            captured.append(CapturedEvent(event, round(at, 3), visitor_id, earlier_id, key, event_id))
        self._count_dropped(dropped)
        if captured:
            location = self.geo.locate(request.ip)
            record = Captured(request.user_agent, location.country, location.region, location.city, captured)
            # Keyed by the first event's site: a request is one entry (a tracker's batch is one
            # site's; one mixing sites is still right, its visits being compare-and-set).
            records = [(captured[0].event.website_id, _encode(record))]
            try:
                await self.log.append(records)
            except Exception as exc:  # a full disk, Valkey away: not stored, so not acknowledged
                self.metrics.rejected.labels("log_unavailable").inc()
                raise Overloaded(f"the event log cannot be written: {type(exc).__name__}") from exc
            self.metrics.accepted.inc(len(captured))
        return Accepted(ids, dropped)

    def _count_dropped(self, dropped: Counter[str]) -> None:
        for reason, count in dropped.items():
            self.metrics.dropped.labels(reason).inc(count)

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
                parts = split_url(event.page_url)
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


# Pages repeat a lot: parse each once (capture checks the hostname, processing reads the rest).
split_url = functools.lru_cache(maxsize=50_000)(urlsplit)


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


def _identity(site: TrackedSite, event: TrackEvent, visitor_id: str) -> tuple[str, str]:
    """(dedupe key or "", event uuid). A client id makes both stable across retries."""
    if event.event_id is not None:
        name = f"{site.id}|{event.event_id}"
    elif event.timestamp is not None:
        # No id, but a client timestamp: a retry of the same send has the same content.
        name = "|".join(
            map(
                str, (site.id, visitor_id, event.event_type, event.page_url, event.goal_name, event.timestamp)
            )
        )
    else:
        return "", str(uuid.UUID(int=random.getrandbits(128), version=4))
    digest = hashlib.blake2b(name.encode(), digest_size=16, key=_EVENT_KEY).hexdigest()
    return digest, f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"

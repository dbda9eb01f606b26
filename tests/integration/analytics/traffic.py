"""Synthetic traffic with a known truth, and that truth computed in plain Python.

:func:`generate` makes visits (sessions of events) around a DST change, midnights and the
edges of the ranges the tests ask for. :func:`event_rows` / :func:`session_rows` turn them
into ``events`` rows and ``sessions`` rows the way ingest writes them: one state row per
event with a rising version, each previous state cancelled (``sign = -1``), so queries
only get right answers if they collapse visits correctly.

:class:`Truth` answers the same questions as the Stats API from the visits alone, following
the metric definitions of :mod:`datafast.domain.analytics.service` — never with SQL.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# The rows built below follow the column orders ingest writes (re-exported for the tests).
from datafast.domain.ingest.process.rows import EVENT_COLUMNS as EVENT_COLUMNS
from datafast.domain.ingest.process.sessions import SESSION_COLUMNS as SESSION_COLUMNS

SOURCES = [
    ("Google", "search", "https://www.google.com/"),
    ("Direct", "direct", ""),
    ("Twitter", "social", "https://t.co/x"),
    ("Hacker News", "referral", "https://news.ycombinator.com/item?id=1"),
    ("Newsletter", "email", ""),
]
PAGES = ["/", "/pricing", "/blog/dst", "/blog/midnight", "/docs", "/signup", "/Über"]
GEO = [("FR", "Île-de-France", "Paris"), ("US", "California", "San Francisco"), ("DE", "Berlin", "Berlin")]
DEVICES = [("desktop", "Chrome", "Mac"), ("mobile", "Safari", "iOS"), ("desktop", "Firefox", "Windows")]
CAMPAIGNS = ["", "", "launch", "black-friday"]


@dataclass
class Event:
    event_id: str
    timestamp: datetime
    event_type: str
    pathname: str
    hostname: str
    goal_name: str = ""
    revenue: int = 0
    props: dict[str, str] = field(default_factory=dict)


@dataclass
class Visit:
    session_id: str
    visitor_id: str
    source: str
    channel: str
    referrer: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    utm_term: str
    utm_content: str
    country: str
    region: str
    city: str
    device: str
    browser: str
    os: str
    events: list[Event]

    @property
    def started_at(self) -> datetime:
        return self.events[0].timestamp

    @property
    def ended_at(self) -> datetime:
        return self.events[-1].timestamp

    @property
    def pageviews(self) -> list[Event]:
        return [e for e in self.events if e.event_type == "pageview"]

    def attribute(self, name: str) -> str:
        if name == "source":
            return self.source
        if name == "entry_page":
            return self.pageviews[0].pathname if self.pageviews else ""
        if name == "exit_page":
            return self.pageviews[-1].pathname if self.pageviews else ""
        value: str = getattr(self, name)
        return value


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def generate(seed: int, start: datetime, end: datetime, visitors: int) -> list[Visit]:
    """Visits of ``visitors`` visitors starting between ``start`` and ``end`` (UTC)."""
    rng = random.Random(seed)
    visits: list[Visit] = []
    span = (end - start).total_seconds()
    for v in range(visitors):
        visitor_id = f"visitor-{seed}-{v}"
        geo = rng.choice(GEO)
        device = rng.choice(DEVICES)
        for _ in range(rng.choice([1, 1, 2, 3])):
            source, channel, referrer = rng.choice(SOURCES)
            campaign = rng.choice(CAMPAIGNS)
            at = _ms(start + timedelta(seconds=rng.uniform(0, span)))
            events: list[Event] = []
            for i in range(rng.choice([1, 1, 2, 3, 4, 6])):
                if i:
                    at = _ms(at + timedelta(seconds=rng.randint(5, 25 * 60)))
                roll = rng.random()
                path = rng.choice(PAGES)
                host = "shop.example" if rng.random() < 0.2 else "www.example"
                props = {"plan": rng.choice(["free", "pro"])} if rng.random() < 0.4 else {}
                if i and roll < 0.15:
                    events.append(
                        Event(str(uuid.uuid4()), at, "goal", path, host, goal_name="signup", props=props)
                    )
                elif i and roll < 0.22:
                    events.append(
                        Event(str(uuid.uuid4()), at, "goal", path, host, goal_name="Newsletter Signup")
                    )
                elif i and roll < 0.3:
                    amount = rng.choice([900, 1900, 4900])
                    events.append(Event(str(uuid.uuid4()), at, "purchase", path, host, revenue=amount))
                else:
                    events.append(Event(str(uuid.uuid4()), at, "pageview", path, host, props=props))
            visits.append(
                Visit(
                    session_id=f"s-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}",
                    visitor_id=visitor_id,
                    source=source,
                    channel=channel,
                    referrer=referrer,
                    utm_source=source.lower() if campaign else "",
                    utm_medium=channel if campaign else "",
                    utm_campaign=campaign,
                    utm_term="analytics" if campaign == "launch" else "",
                    utm_content="hero" if campaign else "",
                    country=geo[0],
                    region=geo[1],
                    city=geo[2],
                    device=device[0],
                    browser=device[1],
                    os=device[2],
                    events=events,
                )
            )
    return visits


def event_rows(site: str, visits: Iterable[Visit]) -> list[list[Any]]:
    rows = []
    for visit in visits:
        for i, e in enumerate(visit.events):
            # Like ingest: only the landing event carries the visit's referrer and UTM tags;
            # later events are internal navigation. Breakdowns must use the visit's values.
            first = i == 0
            rows.append(
                [
                    uuid.UUID(site),
                    uuid.UUID(e.event_id),
                    e.event_type,
                    "",
                    e.timestamp,
                    visit.visitor_id,
                    visit.session_id,
                    e.hostname,
                    e.pathname,
                    f"https://{e.hostname}{e.pathname}",
                    visit.referrer if first else f"https://{e.hostname}/",
                    visit.source if first else "",
                    visit.channel if first else "internal",
                    visit.utm_source if first else "",
                    visit.utm_medium if first else "",
                    visit.utm_campaign if first else "",
                    visit.utm_term if first else "",
                    visit.utm_content if first else "",
                    visit.browser,
                    "1",
                    visit.os,
                    "1",
                    visit.device,
                    visit.country,
                    visit.region,
                    visit.city,
                    e.goal_name,
                    e.props,
                    e.revenue,
                    "EUR" if e.revenue else "",
                ]
            )
    return rows


def _state(site: str, visit: Visit, upto: int, sign: int, version: int) -> list[Any]:
    events = visit.events[:upto]
    pageviews = [e for e in events if e.event_type == "pageview"]
    started, ended = events[0].timestamp, events[-1].timestamp
    return [
        uuid.UUID(site),
        visit.session_id,
        visit.visitor_id,
        sign,
        version,
        started,
        ended,
        int((ended - started).total_seconds()),
        len(pageviews),
        len(events),
        int(len(events) <= 1),
        events[0].hostname,
        pageviews[0].pathname if pageviews else "",
        pageviews[-1].pathname if pageviews else "",
        visit.referrer,
        visit.source,
        visit.channel,
        visit.utm_source,
        visit.utm_medium,
        visit.utm_campaign,
        visit.utm_term,
        visit.utm_content,
        visit.browser,
        visit.os,
        visit.device,
        visit.country,
        visit.region,
        visit.city,
        sum(1 for e in events if e.event_type in ("goal", "purchase")),
        sum(e.revenue for e in events),
    ]


def session_rows(site: str, visits: Iterable[Visit]) -> list[list[Any]]:
    """Every version of every visit as ingest writes them: state, then cancel + next state…"""
    rows = []
    for visit in visits:
        for n in range(1, len(visit.events) + 1):
            if n > 1:
                rows.append(_state(site, visit, n - 1, -1, n - 1))
            rows.append(_state(site, visit, n, 1, n))
    return rows


# --- the truth --------------------------------------------------------------------------

SESSION_DIMENSIONS = [
    "source",
    "channel",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "entry_page",
    "exit_page",
    "country",
    "region",
    "city",
    "device",
    "browser",
    "os",
]
EVENT_DIMENSIONS = ["page", "hostname", "goal", "prop:plan"]


@dataclass(frozen=True)
class F:
    dimension: str
    operator: str
    values: tuple[str, ...]

    def matches(self, value: str) -> bool:
        if self.operator == "is":
            return value in self.values
        if self.operator == "is_not":
            return value not in self.values
        hit = any(v.lower() in value.lower() for v in self.values)
        return hit if self.operator == "contains" else not hit

    @property
    def event_level(self) -> bool:
        return self.dimension in EVENT_DIMENSIONS or self.dimension.startswith("prop:")


def event_value(event: Event, dimension: str) -> str:
    if dimension == "page":
        return event.pathname
    if dimension == "hostname":
        return event.hostname
    if dimension == "goal":
        return event.goal_name
    return event.props.get(dimension.removeprefix("prop:"), "")


def _div(a: float, b: float) -> float:
    return a / b if b else 0


def _event_metrics(pairs: Sequence[tuple[Visit, Event]]) -> dict[str, float]:
    visitors = {v.visitor_id for v, _ in pairs}
    sessions = {v.session_id for v, _ in pairs}
    pageviews = sum(1 for _, e in pairs if e.event_type == "pageview")
    converted = {v.visitor_id for v, e in pairs if e.event_type in ("goal", "purchase")}
    revenue = sum(e.revenue for _, e in pairs)
    purchases = sum(1 for _, e in pairs if e.event_type == "purchase")
    return {
        "visitors": len(visitors),
        "visits": len(sessions),
        "pageviews": pageviews,
        "events": len(pairs),
        "views_per_visit": _div(pageviews, len(sessions)),
        "conversions": len(converted),
        "conversion_rate": _div(len(converted), len(visitors)),
        "revenue": revenue,
        "revenue_per_visitor": _div(revenue, len(visitors)),
        "purchases": purchases,
        "average_order_value": _div(revenue, purchases),
        # No payments, renewals or refunds here: tracker purchases are all the money.
        "new_revenue": revenue,
        "renewal_revenue": 0,
        "refunds": 0,
    }


def _visit_metrics(visits: Sequence[Visit]) -> dict[str, float]:
    visitors = {v.visitor_id for v in visits}
    pageviews = sum(len(v.pageviews) for v in visits)
    converted = {v.visitor_id for v in visits if any(e.event_type in ("goal", "purchase") for e in v.events)}
    revenue = sum(e.revenue for v in visits for e in v.events)
    return {
        "visitors": len(visitors),
        "visits": len(visits),
        "pageviews": pageviews,
        "events": sum(len(v.events) for v in visits),
        "views_per_visit": _div(pageviews, len(visits)),
        "bounce_rate": _div(sum(1 for v in visits if len(v.events) <= 1), len(visits)),
        "visit_duration": _div(
            sum(int((v.ended_at - v.started_at).total_seconds()) for v in visits), len(visits)
        ),
        "conversions": len(converted),
        "conversion_rate": _div(len(converted), len(visitors)),
        "revenue": revenue,
        "revenue_per_visitor": _div(revenue, len(visitors)),
    }


VISIT_METRICS = {"visits", "bounce_rate", "visit_duration", "views_per_visit"}


class Truth:
    def __init__(self, visits: list[Visit], timezone: str) -> None:
        self.visits = visits
        self.zone = ZoneInfo(timezone)

    def _events(self, start: datetime, end: datetime, filters: Sequence[F]) -> list[tuple[Visit, Event]]:
        visit_filters = [f for f in filters if not f.event_level]
        event_filters = [f for f in filters if f.event_level]
        return [
            (v, e)
            for v in self.visits
            if all(f.matches(v.attribute(f.dimension)) for f in visit_filters)
            for e in v.events
            if start <= e.timestamp < end
            and all(f.matches(event_value(e, f.dimension)) for f in event_filters)
        ]

    def _visits(self, start: datetime, end: datetime, filters: Sequence[F]) -> list[Visit]:
        visit_filters = [f for f in filters if not f.event_level]
        event_filters = [f for f in filters if f.event_level]
        return [
            v
            for v in self.visits
            if start <= v.started_at < end
            and all(f.matches(v.attribute(f.dimension)) for f in visit_filters)
            and (
                not event_filters
                or any(
                    start <= e.timestamp < end
                    and all(f.matches(event_value(e, f.dimension)) for f in event_filters)
                    for e in v.events
                )
            )
        ]

    def totals(
        self, start: datetime, end: datetime, filters: Sequence[F], metrics: Sequence[str]
    ) -> dict[str, float]:
        from_events = _event_metrics(self._events(start, end, filters))
        from_visits = _visit_metrics(self._visits(start, end, filters))
        return {m: (from_visits if m in VISIT_METRICS else from_events)[m] for m in metrics}

    def label(self, moment: datetime, interval: str) -> str:
        local = moment.astimezone(self.zone)
        if interval == "hour":
            return local.replace(minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:00%z")
        day = local.date()
        if interval == "day":
            return day.isoformat()
        if interval == "week":
            return (day - timedelta(days=day.weekday())).isoformat()
        return day.replace(day=1).isoformat()

    def timeseries(
        self, start: datetime, end: datetime, filters: Sequence[F], metrics: Sequence[str], interval: str
    ) -> dict[str, dict[str, float]]:
        """Only the buckets with data (the API fills the others with zeros)."""
        events: dict[str, list[tuple[Visit, Event]]] = {}
        for v, e in self._events(start, end, filters):
            events.setdefault(self.label(e.timestamp, interval), []).append((v, e))
        visits: dict[str, list[Visit]] = {}
        for v in self._visits(start, end, filters):
            visits.setdefault(self.label(v.started_at, interval), []).append(v)
        result = {}
        for label in set(events) | set(visits):
            e_metrics = _event_metrics(events.get(label, []))
            v_metrics = _visit_metrics(visits.get(label, []))
            result[label] = {m: (v_metrics if m in VISIT_METRICS else e_metrics)[m] for m in metrics}
        return result

    def breakdown(
        self, start: datetime, end: datetime, filters: Sequence[F], metrics: Sequence[str], dimension: str
    ) -> dict[str, dict[str, float]]:
        if dimension in SESSION_DIMENSIONS:
            groups: dict[str, list[Visit]] = {}
            for v in self._visits(start, end, filters):
                groups.setdefault(v.attribute(dimension), []).append(v)
            return {k: {m: _visit_metrics(g)[m] for m in metrics} for k, g in groups.items()}
        pairs: dict[str, list[tuple[Visit, Event]]] = {}
        for v, e in self._events(start, end, filters):
            pairs.setdefault(event_value(e, dimension), []).append((v, e))
        if dimension == "goal":
            pairs.pop("", None)
        return {k: {m: _event_metrics(g)[m] for m in metrics} for k, g in pairs.items()}

    def funnel(
        self, start: datetime, end: datetime, steps: Sequence[tuple[str, str]], window: timedelta
    ) -> list[int]:
        """Visitors reaching each step in order, all within ``window`` of the first step."""

        def hit(e: Event, step: tuple[str, str]) -> bool:
            kind, value = step
            if kind == "page":
                return e.event_type == "pageview" and e.pathname == value
            return e.event_type in ("goal", "purchase") and e.goal_name == value

        by_visitor: dict[str, list[Event]] = {}
        for v, e in self._events(start, end, []):
            by_visitor.setdefault(v.visitor_id, []).append(e)
        reached = [0] * len(steps)
        for events in by_visitor.values():
            events.sort(key=lambda e: e.timestamp)
            best = 0
            for i, first in enumerate(events):
                if not hit(first, steps[0]):
                    continue
                level, last = 1, first.timestamp
                for later in events[i + 1 :]:
                    if level == len(steps):
                        break
                    # windowFunnel compares whole seconds (toDateTime).
                    if _sec(later.timestamp) - _sec(first.timestamp) > window.total_seconds():
                        break
                    if later.timestamp > last and hit(later, steps[level]):
                        level, last = level + 1, later.timestamp
                best = max(best, level)
            for n in range(best):
                reached[n] += 1
        return reached


def _sec(moment: datetime) -> int:
    return int(moment.timestamp())


def local_range(zone: str, first: str, last: str) -> tuple[datetime, datetime]:
    """UTC bounds of site-local days ``first``…``last`` (inclusive), computed with zoneinfo."""
    tz = ZoneInfo(zone)
    start = datetime.fromisoformat(first).replace(tzinfo=tz).astimezone(UTC)
    end = (datetime.fromisoformat(last).replace(tzinfo=tz) + timedelta(days=1)).astimezone(UTC)
    # datetime + timedelta on an aware datetime is wall-clock arithmetic, which is what we want
    # for "the next local midnight" (23 or 25 hours later across DST).
    return start, end


Predicate = Callable[[Visit], bool]

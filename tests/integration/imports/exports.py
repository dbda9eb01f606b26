"""Builders of other tools' exports, shaped as each tool writes them (column names and order,
file names, value formats), from seeded random traffic.

- Plausible: the CSV export zip (``Plausible.Exports.export_queries``: one
  ``imported_<table>_<first>_<last>.csv`` per table, CSVWithNames).
- Umami: the ``website_event`` table as its data export writes it (ClickHouse schema columns,
  ``created_at`` as ``YYYY-MM-DD HH:MM:SS`` UTC; event_type 1 pageview, 2 custom event).
- GA4: the BigQuery export's ``events_YYYYMMDD`` rows as newline-delimited JSON (INT64 as strings,
  as BigQuery writes them in JSON).
"""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

PLAUSIBLE_COLUMNS = {
    "imported_visitors": ["date", "visitors", "pageviews", "bounces", "visits", "visit_duration"],
    "imported_sources": [
        *("date", "source", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_content"),
        *("utm_term", "pageviews", "visitors", "visits", "visit_duration", "bounces"),
    ],
    "imported_pages": [
        *("date", "hostname", "page", "visits", "visitors", "pageviews", "total_scroll_depth"),
        *("total_scroll_depth_visits", "total_time_on_page", "total_time_on_page_visits"),
    ],
    "imported_entry_pages": [
        *("date", "entry_page", "visitors", "entrances", "visit_duration", "bounces", "pageviews"),
    ],
    "imported_exit_pages": [
        "date",
        "exit_page",
        "visitors",
        "visit_duration",
        "exits",
        "bounces",
        "pageviews",
    ],
    "imported_custom_events": ["date", "name", "link_url", "path", "visitors", "events"],
    "imported_locations": [
        *(
            "date",
            "country",
            "region",
            "city",
            "visitors",
            "visits",
            "visit_duration",
            "bounces",
            "pageviews",
        ),
    ],
    "imported_devices": ["date", "device", "visitors", "visits", "visit_duration", "bounces", "pageviews"],
    "imported_browsers": [
        *("date", "browser", "browser_version", "visitors", "visits", "visit_duration", "bounces"),
        "pageviews",
    ],
    "imported_operating_systems": [
        *("date", "operating_system", "operating_system_version", "visitors", "visits"),
        *("visit_duration", "bounces", "pageviews"),
    ],
}
PAGES = ["/", "/pricing", "/docs", "/blog/launch", "/signup"]
SOURCES = [("Google", "google.com"), ("Hacker News", "news.ycombinator.com"), ("", "")]


def _traffic(rng: random.Random) -> dict[str, int]:
    visits = rng.randint(5, 40)
    bounces = rng.randint(0, visits)
    return {
        "visitors": rng.randint(1, visits),
        "visits": visits,
        "pageviews": visits + rng.randint(0, 60),
        "bounces": bounces,
        "visit_duration": rng.randint(0, 3000),
    }


def plausible_zip(days: list[date], seed: int = 1) -> bytes:
    """A Plausible CSV export of ``days``: random but well-formed daily rows in every file."""
    rng = random.Random(seed)
    suffix = f"_{days[0]:%Y%m%d}_{days[-1]:%Y%m%d}.csv"
    rows: dict[str, list[dict[str, object]]] = {table: [] for table in PLAUSIBLE_COLUMNS}
    for day in days:
        t = _traffic(rng)
        rows["imported_visitors"].append({"date": day, **t})
        for name, _ in SOURCES:
            for campaign in ("", "spring"):
                t = _traffic(rng)
                rows["imported_sources"].append(
                    {
                        "date": day,
                        "source": name or "Direct / None",
                        "referrer": "",
                        "utm_source": "",
                        "utm_medium": "",
                        "utm_campaign": campaign,
                        "utm_content": "",
                        "utm_term": "",
                        **t,
                    }
                )
        for page in PAGES:
            t = _traffic(rng)
            rows["imported_pages"].append(
                {
                    "date": day,
                    "hostname": "example.com",
                    "page": page,
                    "visits": t["visits"],
                    "visitors": t["visitors"],
                    "pageviews": t["pageviews"],
                    "total_scroll_depth": 0,
                    "total_scroll_depth_visits": 0,
                    "total_time_on_page": 0,
                    "total_time_on_page_visits": 0,
                }
            )
            t = _traffic(rng)
            rows["imported_entry_pages"].append(
                {
                    "date": day,
                    "entry_page": page,
                    "visitors": t["visitors"],
                    "entrances": t["visits"],
                    "visit_duration": t["visit_duration"],
                    "bounces": t["bounces"],
                    "pageviews": t["pageviews"],
                }
            )
            t = _traffic(rng)
            rows["imported_exit_pages"].append(
                {
                    "date": day,
                    "exit_page": page,
                    "visitors": t["visitors"],
                    "visit_duration": t["visit_duration"],
                    "exits": t["visits"],
                    "bounces": t["bounces"],
                    "pageviews": t["pageviews"],
                }
            )
        rows["imported_custom_events"].append(
            {"date": day, "name": "Signup", "link_url": "", "path": "", "visitors": 3, "events": 4}
        )
        for country, region, city in (("FR", "FR-IDF", 2988507), ("FR", "FR-ARA", 2996944), ("US", "", 0)):
            rows["imported_locations"].append(
                {"date": day, "country": country, "region": region, "city": city, **_traffic(rng)}
            )
        for device in ("Desktop", "Mobile", "Tablet"):
            rows["imported_devices"].append({"date": day, "device": device, **_traffic(rng)})
        for browser, version in (("Chrome", "120.0"), ("Chrome", "121.0"), ("Firefox", "122.0")):
            rows["imported_browsers"].append(
                {"date": day, "browser": browser, "browser_version": version, **_traffic(rng)}
            )
        for system, version in (("Mac", "14.2"), ("Windows", "11"), ("Android", "14")):
            rows["imported_operating_systems"].append(
                {
                    "date": day,
                    "operating_system": system,
                    "operating_system_version": version,
                    **_traffic(rng),
                }
            )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for table, columns in PLAUSIBLE_COLUMNS.items():
            text = io.StringIO()
            writer = csv.DictWriter(text, columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows[table])
            archive.writestr(table + suffix, text.getvalue())
    return out.getvalue()


def read_csv(archive: bytes, table: str) -> list[dict[str, str]]:
    """One table of a Plausible export zip, as the test reads it back."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        [name] = [n for n in zipped.namelist() if n.startswith(table + "_2")]
        return list(csv.DictReader(io.StringIO(zipped.read(name).decode())))


# --- event-level exports ----------------------------------------------------------------------


@dataclass
class _Visit:
    visitor: str
    start: datetime
    pages: list[str]
    referrer: tuple[str, str]
    country: str
    device: str
    browser: tuple[str, str, str]
    """(Umami's id, GA4's name, DataFast's name)."""
    os: tuple[str, str]
    """(Umami's, GA4's)."""
    custom: bool = False
    gaps: list[int] = field(default_factory=list)


_BROWSERS = [("chrome", "Chrome", "Chrome"), ("firefox", "Firefox", "Firefox"), ("ios", "Safari", "Safari")]
_OS = [("Mac OS", "Macintosh"), ("Windows 10", "Windows"), ("iOS", "iOS")]


def _visits(days: list[date], seed: int) -> list[_Visit]:
    rng = random.Random(seed)
    visitors = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(25)]
    visits = []
    for day in days:
        for _ in range(rng.randint(8, 20)):
            start = datetime(day.year, day.month, day.day, rng.randint(0, 22), rng.randint(0, 59), tzinfo=UTC)
            pages = [rng.choice(PAGES) for _ in range(rng.choice([1, 1, 2, 3, 5]))]
            visits.append(
                _Visit(
                    visitor=rng.choice(visitors),
                    start=start,
                    pages=pages,
                    referrer=rng.choice(SOURCES),
                    country=rng.choice(["FR", "DE", "US"]),
                    device=rng.choice(["desktop", "mobile"]),
                    browser=rng.choice(_BROWSERS),
                    os=rng.choice(_OS),
                    custom=rng.random() < 0.3,
                    gaps=[rng.randint(5, 300) for _ in pages],
                )
            )
    return visits


UMAMI_COLUMNS = [
    *("website_id", "session_id", "visit_id", "event_id", "hostname", "browser", "os", "device"),
    *("screen", "language", "country", "region", "city", "url_path", "url_query", "utm_source"),
    *("utm_medium", "utm_campaign", "utm_content", "utm_term", "referrer_path", "referrer_query"),
    *("referrer_domain", "page_title", "gclid", "fbclid", "msclkid", "ttclid", "li_fat_id", "twclid"),
    *("event_type", "event_name", "tag", "distinct_id", "created_at", "job_id"),
]


def umami_csv(days: list[date], seed: int = 2) -> bytes:
    """Umami's website_event export: a row per pageview (event_type 1) or custom event (2)."""
    website = str(uuid.UUID(int=seed))
    out = io.StringIO()
    writer = csv.DictWriter(out, UMAMI_COLUMNS, lineterminator="\n")
    writer.writeheader()
    rng = random.Random(seed)
    for visit in _visits(days, seed):
        visit_id = str(uuid.UUID(int=rng.getrandbits(128)))
        session_id = str(uuid.UUID(hex=visit.visitor))
        at = visit.start
        events = [(page, 1, "") for page in visit.pages] + (
            [("/signup", 2, "signup")] if visit.custom else []
        )
        for (page, kind, name), gap in zip(events, [*visit.gaps, 7][: len(events)], strict=True):
            writer.writerow(
                {
                    **dict.fromkeys(UMAMI_COLUMNS, ""),
                    "website_id": website,
                    "session_id": session_id,
                    "visit_id": visit_id,
                    "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
                    "hostname": "example.com",
                    "browser": visit.browser[0],
                    "os": visit.os[0],
                    "device": visit.device,
                    "screen": "1920x1080",
                    "language": "en-US",
                    "country": visit.country,
                    "url_path": page,
                    "referrer_domain": visit.referrer[1],
                    "page_title": page.strip("/") or "Home",
                    "event_type": kind,
                    "event_name": name,
                    "created_at": at.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
            at += timedelta(seconds=gap)
    return out.getvalue().encode()


def _param(key: str, value: str | int) -> dict[str, object]:
    typed = {"int_value": str(value)} if isinstance(value, int) else {"string_value": value}
    return {
        "key": key,
        "value": {
            "string_value": None,
            "int_value": None,
            "float_value": None,
            "double_value": None,
            **typed,
        },
    }


_COUNTRY_NAMES = {"FR": "France", "DE": "Germany", "US": "United States"}


def _ga4_event(
    visit: _Visit, session: int, name: str, moment: datetime, *params: dict[str, object], **extra: object
) -> str:
    return json.dumps(
        {
            "event_date": moment.strftime("%Y%m%d"),
            "event_timestamp": str(int(moment.timestamp()) * 1_000_000),
            "event_name": name,
            "event_params": [_param("ga_session_id", session), _param("ga_session_number", 1), *params],
            "user_pseudo_id": f"{visit.visitor[:10]}.{visit.visitor[10:20]}",
            "user_properties": [_param("plan_tier", "pro")] if visit.custom else [],
            "device": {
                "category": visit.device,
                "operating_system": visit.os[1],
                "web_info": {"browser": visit.browser[1], "browser_version": "120.0"},
            },
            "geo": {"country": _COUNTRY_NAMES[visit.country]},
            "traffic_source": {
                "source": visit.referrer[1] or "(direct)",
                "medium": "(none)",
                "name": "(direct)",
            },
            "platform": "WEB",
            **extra,
        }
    )


def ga4_ndjson(days: list[date], seed: int = 3) -> bytes:
    """GA4's BigQuery export rows: session_start, page_view, custom and purchase events."""
    lines = []
    for number, visit in enumerate(_visits(days, seed)):
        session = 1_700_000_000 + number
        at = visit.start
        lines.append(
            _ga4_event(
                visit,
                session,
                "session_start",
                at,
                _param("page_location", f"https://example.com{visit.pages[0]}"),
            )
        )
        for page, gap in zip(visit.pages, visit.gaps, strict=True):
            location = _param("page_location", f"https://example.com{page}?ref=x")
            lines.append(_ga4_event(visit, session, "page_view", at, location))
            at += timedelta(seconds=gap)
        if visit.custom:
            lines.append(_ga4_event(visit, session, "sign_up", at, _param("plan", "pro")))
            ecommerce = {"purchase_revenue": 30.0, "transaction_id": f"t{number}"}
            lines.append(_ga4_event(visit, session, "purchase", at, ecommerce=ecommerce))
    return ("\n".join(lines) + "\n").encode()

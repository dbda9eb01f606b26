"""Exports of other analytics tools → daily aggregates per dimension and value.

What each tool's export holds, and what of it we keep:

- **Plausible** — its CSV export zip (``imported_visitors_YYYYMMDD_YYYYMMDD.csv`` and its
  siblings, columns as Plausible writes them): already daily aggregates, read as they are.
  Sources are summed over their UTM rows, locations over regions and cities, browsers and
  operating systems over their versions. Custom events, regions, cities, versions, UTM
  breakdowns, scroll depth and time on page are not imported.
- **Umami** — its data export's ``website_event`` rows (a CSV, or a zip holding
  ``website_event.csv``), one row per pageview or custom event. Rows are grouped into visits
  (``visit_id``, else ``session_id``); a visit's day is the site-local day it started, its
  source the referring domain's name, its entry and exit pages its first and last pageviews.
  Daily visitors are distinct ``session_id`` values. Custom events and event data are not imported.
- **Google Analytics 4** — its BigQuery export (``events_*`` rows as newline-delimited JSON,
  plain or gzipped). A visit is ``(user_pseudo_id, ga_session_id)``, its day the
  ``event_date`` of its first event; pages are ``page_location``'s path; the source is the
  first ``source`` event parameter, else ``traffic_source.source``. Daily visitors are distinct
  ``user_pseudo_id`` values. Custom events, custom dimensions (other event parameters), user
  properties and e-commerce are not imported. GA4 writes country names: they become ISO codes
  (as DataFast stores countries) through the tz database's ``iso3166.tab`` and GA4's own
  spellings of a few; a name neither knows is kept as it is.

For the event-level exports, a visit with at most one pageview is a bounce and its duration is
the time from its first to its last event, as DataFast counts its own visits.
"""

from __future__ import annotations

import csv
import gzip
import importlib.resources
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from datafast.domain.ingest.process.referrers import lookup_host

__all__ = (
    "DIMENSIONS",
    "SOURCES",
    "Daily",
    "ImportFileError",
    "Parsed",
    "SummaryItem",
    "check",
    "parse",
)

SOURCES = ("plausible", "umami", "ga4")
DIMENSIONS = ("source", "page", "entry_page", "exit_page", "country", "device", "browser", "os")
"""The dimensions imported data has (``""`` is the day's totals)."""
Key = tuple[date, str, str]
"""(day, dimension, value)."""
Daily = dict[Key, list[int]]
"""→ [visitors, visits, pageviews, bounces, visit_duration]."""
Progress = Callable[[float], None]


class ImportFileError(ValueError):
    """The file is not the export it claims to be (the message says what is wrong)."""


@dataclass(frozen=True, slots=True)
class SummaryItem:
    item: str
    imported: bool
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"item": self.item, "imported": self.imported, "note": self.note}


@dataclass(slots=True)
class Parsed:
    daily: Daily = field(default_factory=dict)
    summary: list[SummaryItem] = field(default_factory=list)

    def add(self, key: Key, visitors: int, visits: int, pageviews: int, bounces: int, duration: int) -> None:
        row = self.daily.setdefault(key, [0, 0, 0, 0, 0])
        for i, value in enumerate((visitors, visits, pageviews, bounces, duration)):
            row[i] += value


def _device(value: str) -> str:
    value = value.strip().lower()
    return "desktop" if value == "laptop" else value


def _source_of_host(host: str) -> str:
    host = host.strip().lower().removeprefix("www.")
    if not host:
        return ""
    known = lookup_host(host)
    return known[0] if known else host


# --- Plausible ------------------------------------------------------------------------------

_PLAUSIBLE_FILE = re.compile(r"^(imported_[a-z_]+?)(?:_\d{8}_\d{8})?\.csv$")
# file → (dimension, column holding its value); "" is the day's totals.
_PLAUSIBLE: dict[str, tuple[str, str]] = {
    "imported_visitors": ("", ""),
    "imported_sources": ("source", "source"),
    "imported_pages": ("page", "page"),
    "imported_entry_pages": ("entry_page", "entry_page"),
    "imported_exit_pages": ("exit_page", "exit_page"),
    "imported_locations": ("country", "country"),
    "imported_devices": ("device", "device"),
    "imported_browsers": ("browser", "browser"),
    "imported_operating_systems": ("os", "operating_system"),
}
_PLAUSIBLE_SKIPPED = {
    "imported_custom_events": "Custom events and goals: not imported",
}
_PLAUSIBLE_NOTES = [
    SummaryItem("Regions and cities", False, "locations are imported by country only"),
    SummaryItem("Browser and OS versions", False, "imported by name only"),
    SummaryItem("UTM medium, campaign, content, term and referrer", False, "sources by name only"),
    SummaryItem("Scroll depth and time on page", False, "not imported"),
]


def _int(row: dict[str, str], *names: str) -> int:
    for name in names:
        value = row.get(name)
        if value not in (None, ""):
            try:
                return int(float(value))
            except ValueError:
                raise ImportFileError(f"{name} is not a number: {value!r}") from None
    return 0


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ImportFileError(f"not a date: {value!r}") from None


def _plausible_files(data: bytes) -> dict[str, str]:
    """Plausible's table name → the archive member holding it."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ImportFileError("a Plausible export is a zip archive of CSV files") from None
    found: dict[str, str] = {}
    for name in archive.namelist():
        match = _PLAUSIBLE_FILE.match(name.rsplit("/", 1)[-1])
        if match:
            found[match.group(1)] = name
    if "imported_visitors" not in found:
        raise ImportFileError("no imported_visitors_….csv in the archive: is this a Plausible CSV export?")
    return found


def _csv_rows(text: str, required: Iterable[str], what: str) -> Iterator[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise ImportFileError(f"{what} lacks the column(s) {', '.join(missing)}")
    for row in reader:
        if None in row or None in row.values():
            raise ImportFileError(f"{what}: line {reader.line_num} has not as many fields as the header")
        yield row


def _parse_plausible(data: bytes, timezone: str, progress: Progress) -> Parsed:
    files = _plausible_files(data)
    archive = zipfile.ZipFile(io.BytesIO(data))
    parsed = Parsed()
    for i, (table, member) in enumerate(sorted(files.items())):
        if table not in _PLAUSIBLE:
            note = _PLAUSIBLE_SKIPPED.get(table, "not imported")
            parsed.summary.append(SummaryItem(table, False, note))
            continue
        dimension, column = _PLAUSIBLE[table]
        text = archive.read(member).decode("utf-8-sig")
        required = ["date", "visitors", *([column] if column else [])]
        count = 0
        for row in _csv_rows(text, required, member):
            value = row[column].strip() if column else ""
            if dimension == "source" and value == "Direct / None":
                value = ""
            elif dimension == "device":
                value = _device(value)
            parsed.add(
                (_day(row["date"]), dimension, value),
                _int(row, "visitors"),
                _int(row, "visits", "entrances", "exits"),
                _int(row, "pageviews"),
                _int(row, "bounces"),
                _int(row, "visit_duration"),
            )
            count += 1
        parsed.summary.append(SummaryItem(table, True, f"{count} rows"))
        progress((i + 1) / len(files))
    parsed.summary += _PLAUSIBLE_NOTES
    return parsed


# --- event-level exports (Umami, GA4) -------------------------------------------------------


@dataclass(slots=True)
class _Visit:
    visitor: str
    day: date
    first: float
    last: float
    source: str = ""
    country: str = ""
    device: str = ""
    browser: str = ""
    os: str = ""
    pages: list[str] = field(default_factory=list)


def _aggregate(visits: Iterable[_Visit], parsed: Parsed) -> None:
    """Visits → daily rows: per (day, dimension, value), distinct visitors and the visits' sums."""
    visitors: dict[Key, set[str]] = {}
    for visit in visits:
        pageviews = len(visit.pages)
        bounce = int(pageviews <= 1)
        duration = int(visit.last - visit.first)
        values = [
            ("", ""),
            ("source", visit.source),
            ("country", visit.country),
            ("device", visit.device),
            ("browser", visit.browser),
            ("os", visit.os),
        ]
        if visit.pages:
            values += [("entry_page", visit.pages[0]), ("exit_page", visit.pages[-1])]
        for dimension, value in values:
            key = (visit.day, dimension, value)
            parsed.add(key, 0, 1, pageviews, bounce, duration)
            visitors.setdefault(key, set()).add(visit.visitor)
        for page in set(visit.pages):
            key = (visit.day, "page", page)
            parsed.add(key, 0, 1, visit.pages.count(page), 0, 0)
            visitors.setdefault(key, set()).add(visit.visitor)
    for key, seen in visitors.items():
        parsed.daily[key][0] += len(seen)


# --- Umami ----------------------------------------------------------------------------------

_UMAMI_REQUIRED = ("session_id", "created_at", "url_path", "event_type")
_UMAMI_BROWSERS = {
    "chrome": "Chrome",
    "crios": "Chrome",
    "firefox": "Firefox",
    "fxios": "Firefox",
    "safari": "Safari",
    "ios": "Safari",
    "ios-webview": "Safari",
    "edge-chromium": "Edge",
    "edge": "Edge",
    "edge-ios": "Edge",
    "opera": "Opera",
    "samsung": "Samsung Internet",
    "brave": "Brave",
    "yandexbrowser": "Yandex Browser",
}
_UMAMI_OS = {
    "Mac OS": "macOS",
    "Android OS": "Android",
    "Chrome OS": "ChromeOS",
    "Windows 10": "Windows",
    "Windows 7": "Windows",
    "Windows 8.1": "Windows",
    "Windows 11": "Windows",
}
_UMAMI_PAGEVIEW, _UMAMI_EVENT = "1", "2"


def _umami_text(data: bytes) -> str:
    if data[:2] == b"PK":
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            raise ImportFileError("not a readable zip archive") from None
        names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1].startswith("website_event")]
        if not names:
            raise ImportFileError("no website_event CSV in the archive: is this a Umami export?")
        data = archive.read(names[0])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportFileError("a Umami export is a UTF-8 CSV of website_event rows") from None


def _moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ImportFileError(f"created_at is not a timestamp: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse_umami(data: bytes, timezone: str, progress: Progress) -> Parsed:
    text = _umami_text(data)
    zone = ZoneInfo(timezone)
    rows = list(_csv_rows(text, _UMAMI_REQUIRED, "the website_event CSV"))
    visits: dict[str, _Visit] = {}
    events = 0
    for i, row in enumerate(sorted(rows, key=lambda r: _moment(r["created_at"]))):
        moment = _moment(row["created_at"])
        visit_id = row.get("visit_id") or row["session_id"]
        visit = visits.get(visit_id)
        if visit is None:
            visit = visits[visit_id] = _Visit(
                visitor=row["session_id"],
                day=moment.astimezone(zone).date(),
                first=moment.timestamp(),
                last=moment.timestamp(),
                source=_source_of_host(row.get("referrer_domain", "")),
                country=row.get("country", "").strip().upper(),
                device=_device(row.get("device", "")),
                browser=_UMAMI_BROWSERS.get(row.get("browser", ""), row.get("browser", "").title()),
                os=_UMAMI_OS.get(row.get("os", ""), row.get("os", "")),
            )
        visit.last = moment.timestamp()
        if row["event_type"] == _UMAMI_PAGEVIEW:
            visit.pages.append(row["url_path"] or "/")
        elif row["event_type"] == _UMAMI_EVENT:
            events += 1
        if i % 10_000 == 0:
            progress(i / max(len(rows), 1) / 2)
    parsed = Parsed()
    _aggregate(visits.values(), parsed)
    parsed.summary = [
        SummaryItem("website_event pageviews", True, f"{len(rows) - events} rows in {len(visits)} visits"),
        SummaryItem("Custom events", False, f"{events} rows not imported"),
        SummaryItem("Event data, regions and cities, UTM tags", False, "not imported"),
    ]
    progress(1.0)
    return parsed


# --- Google Analytics 4 (BigQuery export) ---------------------------------------------------

_GA4_USED_PARAMS = frozenset({"ga_session_id", "page_location", "source", "medium", "campaign"})
_GA4_STANDARD_PARAMS = frozenset(
    {
        *_GA4_USED_PARAMS,
        *("ga_session_number", "page_title", "page_referrer", "engagement_time_msec"),
        *("session_engaged", "entrances", "engaged_session_event", "ignore_referrer", "batch_ordering_id"),
        *("batch_page_id", "term", "content", "percent_scrolled", "link_url", "link_domain", "outbound"),
    }
)


# GA4's spellings where the tz database's iso3166.tab has another.
_GA4_COUNTRIES = {
    "United Kingdom": "GB",
    "South Korea": "KR",
    "North Korea": "KP",
    "Czechia": "CZ",
    "Türkiye": "TR",
    "Congo - Kinshasa": "CD",
    "Congo - Brazzaville": "CG",
    "Côte d\u2019Ivoire": "CI",
    "Myanmar (Burma)": "MM",
    "Eswatini": "SZ",
    "Macao": "MO",
    "Palestinian Territories": "PS",
    "St. Lucia": "LC",
    "St. Kitts & Nevis": "KN",
    "St. Vincent & Grenadines": "VC",
    "(not set)": "",
}


@cache
def _country_codes() -> dict[str, str]:
    """Country name → ISO 3166 code, from the tz database (the ``tzdata`` package, else the system's)."""
    try:
        text = (importlib.resources.files("tzdata") / "zoneinfo" / "iso3166.tab").read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        try:
            text = Path("/usr/share/zoneinfo/iso3166.tab").read_text("utf-8")
        except OSError:
            text = ""
    codes = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and "\t" in line:
            code, name = line.split("\t", 1)
            codes[name.strip()] = code.strip()
    return codes | _GA4_COUNTRIES


def _ga4_param(event: dict[str, Any], key: str) -> str:
    for param in event.get("event_params") or ():
        if param.get("key") == key:
            value = param.get("value") or {}
            for kind in ("string_value", "int_value", "float_value", "double_value"):
                if value.get(kind) is not None:
                    return str(value[kind])
    return ""


def _country(name: str, unknown: set[str]) -> str:
    code = _country_codes().get(name)
    if code is None:
        unknown.add(name)
        return name
    return code


def _ga4_lines(data: bytes) -> list[dict[str, Any]]:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except OSError:
            raise ImportFileError("not a readable gzip file") from None
    events = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            raise ImportFileError(
                f"line {number} is not JSON: a GA4 export is newline-delimited JSON"
            ) from None
        if not isinstance(event, dict) or not {"event_date", "event_name", "user_pseudo_id"} <= event.keys():
            raise ImportFileError(
                f"line {number} is not a GA4 events_* row (event_date, event_name, user_pseudo_id)"
            )
        events.append(event)
    if not events:
        raise ImportFileError("the file holds no GA4 events")
    return events


def _ga4_day(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise ImportFileError(f"event_date is not YYYYMMDD: {value!r}") from None


def _parse_ga4(data: bytes, timezone: str, progress: Progress) -> Parsed:
    events = _ga4_lines(data)
    events.sort(key=lambda e: (e["event_date"], int(e.get("event_timestamp") or 0)))
    visits: dict[tuple[str, str], _Visit] = {}
    custom_events: set[str] = set()
    custom_params: set[str] = set()
    user_properties = purchases = 0
    unknown_countries: set[str] = set()
    for i, event in enumerate(events):
        visitor = str(event["user_pseudo_id"])
        at = int(event.get("event_timestamp") or 0) / 1_000_000
        key = (visitor, _ga4_param(event, "ga_session_id"))
        visit = visits.get(key)
        if visit is None:
            device = event.get("device") or {}
            traffic = event.get("traffic_source") or {}
            source = _ga4_param(event, "source") or traffic.get("source") or ""
            visit = visits[key] = _Visit(
                visitor=visitor,
                day=_ga4_day(str(event["event_date"])),
                first=at,
                last=at,
                source="" if source in ("(direct)", "(none)") else _source_of_host(source),
                country=_country(str((event.get("geo") or {}).get("country") or ""), unknown_countries),
                device=_device(device.get("category") or ""),
                browser=(device.get("web_info") or {}).get("browser") or "",
                os=device.get("operating_system") or "",
            )
        visit.last = max(visit.last, at)
        name = event["event_name"]
        if name == "page_view":
            visit.pages.append(urlsplit(_ga4_param(event, "page_location")).path or "/")
        elif name == "purchase":
            purchases += 1
        elif name not in ("session_start", "first_visit", "user_engagement", "scroll"):
            custom_events.add(name)
        custom_params.update(
            p.get("key", "")
            for p in event.get("event_params") or ()
            if p.get("key") not in _GA4_STANDARD_PARAMS
        )
        user_properties += bool(event.get("user_properties"))
        if i % 10_000 == 0:
            progress(i / len(events) / 2)
    parsed = Parsed()
    _aggregate(visits.values(), parsed)
    pageviews = sum(len(v.pages) for v in visits.values())
    parsed.summary = [
        SummaryItem("page_view events", True, f"{pageviews} pageviews in {len(visits)} visits"),
        SummaryItem(
            "Custom events",
            False,
            f"not imported: {', '.join(sorted(custom_events))}" if custom_events else "none found",
        ),
        SummaryItem(
            "GA4 custom dimensions",
            False,
            f"not imported: {', '.join(sorted(custom_params))}" if custom_params else "none found",
        ),
        SummaryItem("User properties", False, f"not imported ({user_properties} events carried them)"),
        SummaryItem("E-commerce (purchase events, revenue)", False, f"not imported ({purchases} purchases)"),
        SummaryItem(
            "Countries",
            True,
            f"names kept as they are (no ISO code known): {', '.join(sorted(unknown_countries))}"
            if unknown_countries
            else "every name mapped to its ISO code",
        ),
    ]
    progress(1.0)
    return parsed


_PARSERS: dict[str, Callable[[bytes, str, Progress], Parsed]] = {
    "plausible": _parse_plausible,
    "umami": _parse_umami,
    "ga4": _parse_ga4,
}


def check(source: str, data: bytes) -> None:
    """Refuse at once (``ImportFileError``) a file that is plainly not ``source``'s export."""
    if not data:
        raise ImportFileError("the file is empty")
    if source == "plausible":
        _plausible_files(data)
    elif source == "umami":
        text = _umami_text(data)
        next(_csv_rows(text.split("\n", 1)[0] + "\n", _UMAMI_REQUIRED, "the website_event CSV"), None)
    elif source == "ga4":
        _ga4_lines(data if data[:2] == b"\x1f\x8b" else data.split(b"\n", 1)[0])
    else:
        raise ImportFileError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")


def parse(source: str, data: bytes, timezone: str, progress: Progress = lambda _: None) -> Parsed:
    """Read ``source``'s export into daily rows (``timezone``: the site's, for event timestamps)."""
    if source not in _PARSERS:
        raise ImportFileError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    try:
        return _PARSERS[source](data, timezone, progress)
    except (csv.Error, UnicodeDecodeError, zipfile.BadZipFile, KeyError, TypeError, AttributeError) as error:
        # A row the checks above let through (a short CSV row, a JSON field of another type…).
        raise ImportFileError(f"the file is malformed: {type(error).__name__}: {error}") from None

"""The export parsers on small hand-written files: values mapped to DataFast's, visits built by
DataFast's rules, and malformed files refused with a reason (never another exception)."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from datetime import date

import pytest

from datafast.domain.imports.parsers import ImportFileError, check, parse


def _zip(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


VISITORS = "date,visitors,pageviews,bounces,visits,visit_duration\n2024-01-02,3,7,1,4,120\n"
SOURCES = (
    "date,source,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,pageviews,visitors,visits,"
    "visit_duration,bounces\n"
    "2024-01-02,Direct / None,,,,,,,3,2,2,10,1\n2024-01-02,Google,,,,spring,,,4,1,2,20,0\n"
)
DEVICES = "date,device,visitors,visits,visit_duration,bounces,pageviews\n2024-01-02,Desktop,3,4,120,1,7\n"


def test_plausible_direct_and_device_names_become_datafasts() -> None:
    data = _zip(
        {
            "imported_visitors_20240102_20240102.csv": VISITORS,
            "imported_sources_20240102_20240102.csv": SOURCES,
            "imported_devices_20240102_20240102.csv": DEVICES,
        }
    )
    daily = parse("plausible", data, "UTC").daily
    day = date(2024, 1, 2)
    assert daily[(day, "", "")] == [3, 4, 7, 1, 120]
    assert daily[(day, "source", "")] == [2, 2, 3, 1, 10]
    assert daily[(day, "source", "Google")] == [1, 2, 4, 0, 20]
    assert daily[(day, "device", "desktop")] == [3, 4, 7, 1, 120]


def test_umami_rows_become_visits_with_entry_exit_bounce_and_duration() -> None:
    header = "session_id,visit_id,created_at,url_path,event_type,referrer_domain,browser,os,device,country\n"
    rows = [
        "s1,v1,2024-01-02 23:30:00,/,1,www.google.com,chrome,Mac OS,laptop,FR",
        "s1,v1,2024-01-02 23:40:00,/pricing,1,www.google.com,chrome,Mac OS,laptop,FR",
        "s1,v1,2024-01-02 23:45:00,/pricing,2,www.google.com,chrome,Mac OS,laptop,FR",
        "s2,v2,2024-01-03 08:00:00,/docs,1,,firefox,Windows 10,mobile,DE",
    ]
    parsed = parse("umami", (header + "\n".join(rows) + "\n").encode(), "Europe/Paris")
    # 23:30 UTC is 00:30 the next day in Paris: both visits are on 3 January there.
    day = date(2024, 1, 3)
    assert parsed.daily[(day, "", "")] == [2, 2, 3, 1, 15 * 60]
    assert parsed.daily[(day, "source", "Google")] == [1, 1, 2, 0, 15 * 60]
    assert parsed.daily[(day, "entry_page", "/")][1] == 1
    assert parsed.daily[(day, "exit_page", "/pricing")][1] == 1
    assert parsed.daily[(day, "browser", "Chrome")][1] == 1
    assert parsed.daily[(day, "os", "macOS")][1] == 1
    assert parsed.daily[(day, "device", "desktop")][1] == 1
    assert parsed.daily[(day, "page", "/pricing")] == [1, 1, 1, 0, 0]
    assert [i.note for i in parsed.summary if i.item == "Custom events"] == ["1 rows not imported"]


def test_ga4_gzipped_export_is_read() -> None:
    event = {
        "event_date": "20240102",
        "event_timestamp": "1704200000000000",
        "event_name": "page_view",
        "user_pseudo_id": "1.2",
        "event_params": [
            {"key": "ga_session_id", "value": {"int_value": "7"}},
            {"key": "page_location", "value": {"string_value": "https://example.com/a?b=c"}},
        ],
        "device": {"category": "desktop", "operating_system": "Windows", "web_info": {"browser": "Edge"}},
        "geo": {"country": "France"},
        "traffic_source": {"source": "(direct)"},
    }
    data = gzip.compress((json.dumps(event) + "\n").encode())
    check("ga4", data)
    daily = parse("ga4", data, "UTC").daily
    assert daily[(date(2024, 1, 2), "page", "/a")] == [1, 1, 1, 0, 0]
    assert daily[(date(2024, 1, 2), "source", "")] == [1, 1, 1, 1, 0]
    assert daily[(date(2024, 1, 2), "country", "FR")] == [1, 1, 1, 1, 0]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("France", "FR"),
        ("United Kingdom", "GB"),
        ("South Korea", "KR"),
        ("Côte d\u2019Ivoire", "CI"),
        ("Atlantis", "Atlantis"),
    ],
)
def test_ga4_country_names_become_iso_codes(name: str, code: str) -> None:
    event = {
        "event_date": "20240102",
        "event_name": "page_view",
        "user_pseudo_id": "1",
        "geo": {"country": name},
    }
    parsed = parse("ga4", (json.dumps(event) + "\n").encode(), "UTC")
    assert parsed.daily[(date(2024, 1, 2), "country", code)][1] == 1
    [countries] = [i for i in parsed.summary if i.item == "Countries"]
    assert ("Atlantis" in countries.note) == (code == "Atlantis")


@pytest.mark.parametrize(
    ("source", "data", "reason"),
    [
        ("plausible", _zip({"readme.txt": "hi"}), "no imported_visitors"),
        ("plausible", _zip({"imported_visitors.csv": "date,visitors\nnot-a-date,1\n"}), "not a date"),
        ("plausible", _zip({"imported_visitors.csv": "date,visitors\n2024-01-02\n"}), "as many fields"),
        ("plausible", _zip({"imported_visitors.csv": "date,visitors\n2024-01-02,many\n"}), "not a number"),
        ("umami", b"session_id,created_at,url_path,event_type\ns,yesterday,/,1\n", "not a timestamp"),
        ("ga4", b'{"event_date": "2024-01-02", "event_name": "x", "user_pseudo_id": "1"}\n', "YYYYMMDD"),
        (
            "ga4",
            b'{"event_date": "20240102", "event_name": "x", "user_pseudo_id": "1", "device": 3}\n',
            "malformed",
        ),
        ("ga4", b"\n\n", "no GA4 events"),
    ],
)
def test_a_malformed_file_is_refused_with_a_reason(source: str, data: bytes, reason: str) -> None:
    with pytest.raises(ImportFileError, match=reason):
        parse(source, data, "UTC")


def test_a_umami_export_zip_holding_website_event_csv_is_read() -> None:
    csv_text = "session_id,visit_id,created_at,url_path,event_type\ns1,v1,2024-01-02T10:00:00.000Z,/,1\n"
    data = _zip({"umami-export/website_event.csv": csv_text, "umami-export/session.csv": "x\n"})
    check("umami", data)
    assert parse("umami", data, "UTC").daily[(date(2024, 1, 2), "", "")] == [1, 1, 1, 1, 0]

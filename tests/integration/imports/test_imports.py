"""Imports: a Plausible, a Umami and a GA4 export — built in the shape each tool writes — land
through the API and its queued job, and the Stats API shows the totals the files hold (computed
here from the files), merged with native data only before the site's first native event; in
both modes (embedded: the job runs in the app's process; scaled: on a SAQ worker)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import zipfile
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.integration.imports.exports import ga4_ndjson, plausible_zip, read_csv, umami_csv
from tests.integration.revenue.conftest import Shop

Expected = dict[str, Any]


def _days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(count)]


async def _upload(shop: Shop, source: str, data: bytes, filename: str) -> dict[str, Any]:
    response = await shop.owner.post(
        f"/api/v1/sites/{shop.id}/imports",
        params={"source": source, "filename": filename},
        content=data,
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert created["status"] == "queued" or created["status"] in ("running", "done")
    return created


async def _finished(shop: Shop, import_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await shop.owner.get(f"/api/v1/sites/{shop.id}/imports/{import_id}")
        assert response.status_code == 200, response.text
        row: dict[str, Any] = response.json()
        assert 0 <= row["progress"] <= 1
        if row["status"] in ("done", "failed"):
            return row
        await asyncio.sleep(0.1)
    raise AssertionError("the import did not finish")


async def _query(shop: Shop, first: date, last: date, **body: Any) -> dict[str, Any]:
    response = await shop.owner.post(
        f"/api/v1/sites/{shop.id}/query",
        json={"date_range": {"start": first.isoformat(), "end": last.isoformat()}, **body},
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


METRICS = ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration"]


def _ratios(visitors: float, visits: float, pageviews: float, bounces: float, duration: float) -> Expected:
    return {
        "visitors": visitors,
        "visits": visits,
        "pageviews": pageviews,
        "bounce_rate": pytest.approx(bounces / visits),
        "visit_duration": pytest.approx(duration / visits),
    }


def _from_events(
    events: list[tuple[str, str, datetime, str | None, str]],
) -> tuple[Expected, Expected, Expected]:
    """(totals, visits per day, visits per source) from an event-level export's events, each
    ``(visit key, visitor, moment, page of a pageview or None, source)`` — DataFast's rules:
    a visit is counted on the day it starts, bounces with at most one pageview, lasts from its
    first to its last event; daily visitors are distinct per day, summed over the days."""
    by_visit: dict[str, list[tuple[str, datetime, str | None, str]]] = defaultdict(list)
    for key, visitor, moment, page, source in events:
        by_visit[key].append((visitor, moment, page, source))
    per_day: dict[date, set[str]] = defaultdict(set)
    visits_per_day: dict[str, int] = defaultdict(int)
    visits_per_source: dict[str, int] = defaultdict(int)
    pageviews = bounces = duration = 0
    for rows in by_visit.values():
        rows.sort(key=lambda r: r[1])
        day = rows[0][1].date()
        per_day[day].add(rows[0][0])
        visits_per_day[day.isoformat()] += 1
        visits_per_source[rows[0][3]] += 1
        views = sum(1 for r in rows if r[2] is not None)
        pageviews += views
        bounces += views <= 1
        duration += int((rows[-1][1] - rows[0][1]).total_seconds())
    visitors = sum(len(v) for v in per_day.values())
    return _ratios(visitors, len(by_visit), pageviews, bounces, duration), visits_per_day, visits_per_source


def _totals(answer: dict[str, Any]) -> Expected:
    return {m: answer["totals"][m] for m in METRICS}


async def test_a_plausible_export_lands_and_merges_before_the_first_native_event(shop: Shop) -> None:
    today = datetime.now(UTC).date()
    days = _days(today - timedelta(days=10), 11)  # ends today: today's imported row must not count
    archive = plausible_zip(days)
    created = await _upload(shop, "plausible", archive, "example_com_20261205.zip")
    done = await _finished(shop, created["id"])
    assert done["status"] == "done", done
    assert done["progress"] == 1
    assert (done["first_day"], done["last_day"]) == (days[0].isoformat(), days[-1].isoformat())
    summary = {item["item"]: item for item in done["summary"]}
    assert summary["imported_visitors"]["imported"] is True
    assert summary["imported_custom_events"] == {
        "item": "imported_custom_events",
        "imported": False,
        "note": "Custom events and goals: not imported",
    }

    # Before any native event, every imported day counts.
    visitors = read_csv(archive, "imported_visitors")

    def summed(rows: list[dict[str, str]], *columns: str) -> list[int]:
        return [sum(int(r[c]) for r in rows) for c in columns]

    columns = ("visitors", "visits", "pageviews", "bounces", "visit_duration")
    answer = await _query(shop, days[0], today, metrics=METRICS)
    assert _totals(answer) == _ratios(*summed(visitors, *columns))
    assert answer["imported"] == {
        "included": True,
        "first_day": days[0].isoformat(),
        "last_day": today.isoformat(),
        "note": None,
    }

    # A native visit today: from now on imported data counts only before today.
    await shop.visit("v-native", path="/pricing")
    await shop.drained()
    await shop.wait_for_sessions(1)
    before = [r for r in visitors if r["date"] < today.isoformat()]
    v, n, p, b, d = summed(before, *columns)
    answer = await _query(shop, days[0], today, metrics=METRICS)
    assert _totals(answer) == _ratios(v + 1, n + 1, p + 1, b + 1, d)
    assert answer["imported"]["last_day"] == (today - timedelta(days=1)).isoformat()

    series = await _query(shop, days[0], today, metrics=["visits"], interval="day")
    assert {b["bucket"]: b["metrics"]["visits"] for b in series["timeseries"]} == {
        **{r["date"]: int(r["visits"]) for r in before},
        today.isoformat(): 1,
    }

    sources: dict[str | None, int] = defaultdict(int)
    for row in read_csv(archive, "imported_sources"):
        if row["date"] < today.isoformat():
            sources["" if row["source"] == "Direct / None" else row["source"]] += int(row["visits"])
    sources[""] += 1  # the native visit: direct
    rows = (await _query(shop, days[0], today, metrics=["visits"], dimensions=["source"]))["rows"]
    assert {r["dimensions"][0]: r["metrics"]["visits"] for r in rows} == sources
    assert [r["metrics"]["visits"] for r in rows] == sorted(sources.values(), reverse=True)

    devices: dict[str, int] = defaultdict(int)
    for row in read_csv(archive, "imported_devices"):
        if row["date"] < today.isoformat():
            devices[row["device"].lower()] += int(row["visitors"])
    devices["desktop"] += 1
    rows = (await _query(shop, days[0], today, metrics=["visitors"], dimensions=["device"]))["rows"]
    assert {r["dimensions"][0]: r["metrics"]["visitors"] for r in rows} == devices

    # Under a filter imported data is left out, and the answer says so.
    filtered = await _query(
        shop,
        days[0],
        today,
        metrics=["visits"],
        filters=[{"dimension": "page", "operator": "is", "values": ["/pricing"]}],
    )
    assert filtered["totals"]["visits"] == 1
    assert filtered["imported"]["included"] is False
    assert "filter" in filtered["imported"]["note"]

    # Deleting the import takes its data out of the dashboard.
    response = await shop.owner.delete(f"/api/v1/sites/{shop.id}/imports/{created['id']}")
    assert response.status_code == 204, response.text
    answer = await _query(shop, days[0], today, metrics=METRICS)
    assert (answer["totals"]["visits"], answer["imported"]) == (1, None)


async def test_a_umami_export_lands_with_the_totals_of_its_events(shop: Shop) -> None:
    days = _days(datetime.now(UTC).date() - timedelta(days=20), 7)
    data = umami_csv(days)
    done = await _finished(shop, (await _upload(shop, "umami", data, "website_event.csv"))["id"])
    assert done["status"] == "done", done
    assert {item["item"] for item in done["summary"] if not item["imported"]} >= {"Custom events"}

    rows = list(csv.DictReader(io.StringIO(data.decode())))
    events = [
        (
            r["visit_id"],
            r["session_id"],
            datetime.strptime(r["created_at"], "%Y-%m-%d %H:%M:%S"),
            r["url_path"] if r["event_type"] == "1" else None,
            {"google.com": "Google", "news.ycombinator.com": "Hacker News"}.get(r["referrer_domain"], ""),
        )
        for r in rows
    ]
    totals, per_day, per_source = _from_events(events)
    assert _totals(await _query(shop, days[0], days[-1], metrics=METRICS)) == totals
    series = await _query(shop, days[0], days[-1], metrics=["visits"], interval="day")
    assert {b["bucket"]: b["metrics"]["visits"] for b in series["timeseries"]} == per_day
    rows_ = (await _query(shop, days[0], days[-1], metrics=["visits"], dimensions=["source"]))["rows"]
    assert {r["dimensions"][0]: r["metrics"]["visits"] for r in rows_} == per_source
    pages: dict[str, int] = defaultdict(int)
    for r in rows:
        if r["event_type"] == "1":
            pages[r["url_path"]] += 1
    answer = await _query(shop, days[0], days[-1], metrics=["pageviews"], dimensions=["page"])
    assert {r["dimensions"][0]: r["metrics"]["pageviews"] for r in answer["rows"]} == pages


async def test_a_ga4_export_lands_with_the_totals_of_its_events(shop: Shop) -> None:
    days = _days(datetime.now(UTC).date() - timedelta(days=40), 5)
    data = ga4_ndjson(days)
    done = await _finished(shop, (await _upload(shop, "ga4", data, "events_20261101.json"))["id"])
    assert done["status"] == "done", done
    summary = {item["item"]: item for item in done["summary"]}
    assert summary["GA4 custom dimensions"]["imported"] is False
    assert "plan" in summary["GA4 custom dimensions"]["note"]
    assert "sign_up" in summary["Custom events"]["note"]
    assert summary["Countries"]["note"] == "every name mapped to its ISO code"

    lines = [json.loads(line) for line in data.splitlines()]

    def param(event: dict[str, Any], key: str) -> str:
        [value] = [p["value"] for p in event["event_params"] if p["key"] == key]
        return str(value["int_value"] or value["string_value"])

    events = [
        (
            f"{e['user_pseudo_id']}/{param(e, 'ga_session_id')}",
            e["user_pseudo_id"],
            datetime.fromtimestamp(int(e["event_timestamp"]) / 1e6, UTC).replace(tzinfo=None),
            param(e, "page_location") if e["event_name"] == "page_view" else None,
            {"google.com": "Google", "news.ycombinator.com": "Hacker News"}.get(
                e["traffic_source"]["source"], ""
            ),
        )
        for e in lines
    ]
    totals, per_day, per_source = _from_events(events)
    assert _totals(await _query(shop, days[0], days[-1], metrics=METRICS)) == totals
    series = await _query(shop, days[0], days[-1], metrics=["visits"], interval="day")
    assert {b["bucket"]: b["metrics"]["visits"] for b in series["timeseries"]} == per_day
    rows = (await _query(shop, days[0], days[-1], metrics=["visits"], dimensions=["source"]))["rows"]
    assert {r["dimensions"][0]: r["metrics"]["visits"] for r in rows} == per_source
    countries: dict[str, int] = defaultdict(int)
    for key in {e[0]: e for e in events}:
        first = min(
            (e for e in lines if f"{e['user_pseudo_id']}/{param(e, 'ga_session_id')}" == key),
            key=lambda e: int(e["event_timestamp"]),
        )
        countries[{"France": "FR", "Germany": "DE", "United States": "US"}[first["geo"]["country"]]] += 1
    rows = (await _query(shop, days[0], days[-1], metrics=["visits"], dimensions=["country"]))["rows"]
    assert {r["dimensions"][0]: r["metrics"]["visits"] for r in rows} == countries


async def test_a_file_that_is_not_the_export_named_is_refused_with_a_problem(shop: Shop) -> None:
    today = datetime.now(UTC).date()
    cases = [
        ("plausible", b"not a zip", "zip archive"),
        ("plausible", umami_csv([today]), "zip archive"),
        ("umami", b"a,b,c\n1,2,3\n", "session_id"),
        ("ga4", b"{not json\n", "not JSON"),
        ("ga4", b'{"event_name": "page_view"}\n', "events_* row"),
        ("umami", b"", "empty"),
        ("matomo", b"x", "source"),
    ]
    for source, body, words in cases:
        response = await shop.owner.post(
            f"/api/v1/sites/{shop.id}/imports", params={"source": source}, content=body
        )
        assert response.status_code == 400, (source, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert words in response.text, (source, response.text)
    listed = await shop.owner.get(f"/api/v1/sites/{shop.id}/imports")
    assert listed.status_code == 200
    assert listed.json() == []


async def test_a_file_found_wrong_while_importing_fails_the_import_with_its_reason(shop: Shop) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:  # the right names, a wrong row further down
        archive.writestr(
            "imported_visitors_20240101_20240102.csv",
            "date,visitors,pageviews,bounces,visits,visit_duration\n2024-01-01,1,1,1,1,0\n2024-13-01,1,1,1,1,0\n",
        )
    created = await _upload(shop, "plausible", out.getvalue(), "broken.zip")
    failed = await _finished(shop, created["id"])
    assert (failed["status"], failed["rows"], failed["summary"]) == ("failed", 0, [])
    assert "not a date: '2024-13-01'" in failed["error"]
    answer = await _query(shop, date(2024, 1, 1), date(2024, 1, 2), metrics=["visits"])
    assert (answer["totals"]["visits"], answer["imported"]) == (0, None)

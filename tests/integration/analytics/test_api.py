"""The Stats API over HTTP: who may read what, bad input, the result cache and its invalidation,
rate limits, funnels, and the OpenAPI schema. Runs in both modes (in-process and Valkey adapters)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from datafast.lib.adapters import Adapters
from tests.conftest import SettingsFactory
from tests.helpers import CHROME_MAC, running_worker
from tests.integration.accounts.conftest import Browser, signup
from tests.integration.analytics.traffic import (
    EVENT_COLUMNS,
    SESSION_COLUMNS,
    Truth,
    event_rows,
    generate,
    session_rows,
)

Client = AsyncTestClient[Litestar]
TZ = "Europe/Paris"
_10S = timedelta(seconds=10)


async def site_with_traffic(
    client: Client, adapters: Adapters, visitors: int = 30
) -> tuple[Browser, dict[str, Any], Truth]:
    """A user, their site (Paris time) and traffic of the last two days written to ClickHouse."""
    owner = await signup(client)
    site = await owner.create_site(timezone=TZ, currency="EUR")
    now = datetime.now(UTC)
    visits = generate(7, now - timedelta(days=2), now - timedelta(hours=3), visitors)
    await adapters.event_store.insert("events", event_rows(site["id"], visits), EVENT_COLUMNS)
    await adapters.event_store.insert("sessions", session_rows(site["id"], visits), SESSION_COLUMNS)
    return owner, site, Truth(visits, TZ)


def week(truth: Truth) -> tuple[datetime, datetime]:
    """The bounds of period=7d, computed independently."""
    today = datetime.now(UTC).astimezone(truth.zone).date()
    start = datetime.combine(today - timedelta(days=6), datetime.min.time(), truth.zone)
    end = datetime.combine(today + timedelta(days=1), datetime.min.time(), truth.zone)
    return start.astimezone(UTC), end.astimezone(UTC)


async def api_key(owner: Browser, **body: Any) -> str:
    response = await owner.post("/api/v1/api-keys", json={"name": "stats", **body})
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_metrics_answer_the_owner_by_cookie_and_by_api_key(client: Client, adapters: Adapters) -> None:
    owner, site, truth = await site_with_traffic(client, adapters)
    url = f"/api/v1/sites/{site['id']}/metrics?period=7d&metrics=visitors,visits,revenue"

    by_cookie = await owner.get(url)
    key = await api_key(owner, read_only=True, sites=[site["id"]])
    by_key = await client.get(url, headers=bearer(key))

    assert by_cookie.status_code == 200, by_cookie.text
    assert by_key.status_code == 200, by_key.text
    start, end = week(truth)
    expected = truth.totals(start, end, [], ["visitors", "visits", "revenue"])
    assert by_cookie.json()["totals"] == expected
    assert by_key.json()["totals"] == expected
    assert by_key.json()["currency"] == "EUR"
    assert by_key.json()["current_visitors"] == 0  # every visit ended more than 30 minutes ago


async def test_current_visitors_say_when_the_newest_event_they_count_happened(
    client: Client, adapters: Adapters
) -> None:
    """A live view adds to ``current_visitors`` only visitors first seen in later events."""
    owner = await signup(client)
    site = await owner.create_site()
    url = f"/api/v1/sites/{site['id']}/metrics?period=today&metrics=visitors"
    empty = (await owner.get(url)).json()
    now = datetime.now(UTC)
    boundary = now - timedelta(minutes=5)
    visits = generate(11, now - timedelta(minutes=40), now - timedelta(minutes=1), 40)
    for visit in visits:  # nothing in the future, nothing within 10 s of the 5 minutes' edge
        visit.events = [e for e in visit.events if e.timestamp < now and abs(e.timestamp - boundary) > _10S]
    visits = [visit for visit in visits if visit.events]
    await adapters.event_store.insert("events", event_rows(site["id"], visits), EVENT_COLUMNS)

    answer = (await owner.get(url)).json()

    assert datetime.now(UTC) - now < _10S
    recent = [(v.visitor_id, e.timestamp) for v in visits for e in v.events if e.timestamp >= boundary]
    assert recent  # the traffic has visitors of the last 5 minutes, and some before
    assert len(recent) < sum(len(v.events) for v in visits)
    assert empty["current_visitors"] == 0
    assert empty["current_through"] is None
    assert answer["current_visitors"] == len({visitor for visitor, _ in recent})
    assert answer["current_through"] == max(at for _, at in recent).timestamp()


async def test_no_one_else_sees_a_sites_stats(client: Client, adapters: Adapters) -> None:
    owner, site, _ = await site_with_traffic(client, adapters, visitors=3)
    stranger = await signup(client)
    other_site = await owner.create_site()
    key_for_other_site = await api_key(owner, sites=[other_site["id"]])
    urls = [
        f"/api/v1/sites/{site['id']}/metrics",
        f"/api/v1/sites/{site['id']}/breakdown?dimension=source",
        f"/api/v1/sites/{site['id']}/visitors",
        f"/api/v1/sites/{site['id']}/funnels",
    ]
    for url in urls:
        anonymous = await client.get(url)
        assert anonymous.status_code == 401, url
        assert anonymous.headers["content-type"].startswith("application/problem+json")
        assert (await stranger.get(url)).status_code == 404, url
        assert (await client.get(url, headers=bearer(key_for_other_site))).status_code == 404, url
        assert (await client.get(url, headers=bearer("dfk_not_a_key"))).status_code == 401, url
    query = await stranger.post(f"/api/v1/sites/{site['id']}/query", json={"metrics": ["visitors"]})
    assert query.status_code == 404


async def test_the_general_query_runs_breakdowns_with_filters_and_pagination(
    client: Client, adapters: Adapters
) -> None:
    owner, site, truth = await site_with_traffic(client, adapters)
    key = await api_key(owner, read_only=True)  # a read-only key may POST a query: it only reads
    body = {
        "metrics": ["visitors", "visits", "revenue"],
        "dimensions": ["source"],
        "filters": [{"dimension": "device", "operator": "is", "values": ["desktop"]}],
        "date_range": "7d",
        "order_by": [{"field": "visits", "direction": "desc"}],
        "limit": 2,
    }
    rows: list[dict[str, Any]] = []
    for offset in range(0, 20, 2):
        response = await client.post(
            f"/api/v1/sites/{site['id']}/query", json={**body, "offset": offset}, headers=bearer(key)
        )
        assert response.status_code == 200, response.text
        rows += response.json()["rows"]
        if not response.json()["has_more"]:
            break
    from tests.integration.analytics.traffic import F

    start, end = week(truth)
    expected = truth.breakdown(start, end, [F("device", "is", ("desktop",))], body["metrics"], "source")  # type: ignore[arg-type]
    assert {r["dimensions"][0]: r["metrics"] for r in rows} == expected
    assert [r["metrics"]["visits"] for r in rows] == sorted(
        (r["metrics"]["visits"] for r in rows), reverse=True
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/metrics?metrics=visitors,nope", None),
        ("GET", "/metrics?filter=source", None),
        ("GET", "/metrics?filter=nope==x", None),
        ("GET", "/metrics?filter=source==", None),
        ("GET", "/metrics?period=3y", None),
        ("GET", "/metrics?start_date=2026-10-01", None),
        ("GET", "/metrics?start_date=2026-10-05&end_date=2026-10-01", None),
        ("GET", "/metrics?start_date=yesterday&end_date=2026-10-01", None),
        ("GET", "/timeseries?interval=minute", None),
        ("GET", "/timeseries?interval=hour&period=90d", None),
        ("GET", "/breakdown?dimension=nope", None),
        ("GET", "/breakdown?dimension=page&metrics=bounce_rate", None),
        ("GET", "/breakdown?dimension=source&order_by=-nope", None),
        ("GET", "/breakdown?dimension=source&limit=0", None),
        ("GET", "/breakdown?dimension=source&limit=100000", None),
        ("GET", "/revenue?by=nope", None),
        ("GET", "/metrics?start_date=9999-12-31&end_date=9999-12-31", None),
        ("GET", "/timeseries?start_date=1970-01-01&end_date=1970-01-31", None),
        ("GET", "/metrics?filter=source==" + "|".join(f"s{i}" for i in range(300)), None),
        ("GET", "/metrics?" + "&".join(["filter=source==a"] * 21), None),
        ("POST", "/query", {"date_range": {"start": "9999-12-30", "end": "9999-12-31"}}),
        ("POST", "/query", {"metrics": []}),
        ("POST", "/query", {"metrics": ["visitors"], "unknown": 1}),
        ("POST", "/query", {"dimensions": ["source"], "interval": "day"}),
        ("POST", "/query", {"date_range": {"start": "2026-13-01", "end": "2026-12-01"}}),
        ("POST", "/query", {"filters": [{"dimension": "page", "operator": "like", "values": ["x"]}]}),
        ("POST", "/query", "not json"),
        ("POST", "/funnels", {"name": "x", "steps": [{"kind": "page", "value": "/"}]}),
        (
            "POST",
            "/funnels",
            {"name": "x", "steps": [{"kind": "url", "value": "/"}, {"kind": "page", "value": "/"}]},
        ),
    ],
)
async def test_bad_input_is_a_400_problem_never_a_500(
    client: Client, adapters: Adapters, method: str, path: str, body: Any
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    kwargs: dict[str, Any] = {}
    if isinstance(body, str):
        kwargs["content"] = body
        kwargs["headers"] = {"Content-Type": "application/json"}
    elif body is not None:
        kwargs["json"] = body
    response = await owner.request(method, f"/api/v1/sites/{site['id']}{path}", **kwargs)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 400


async def test_results_are_cached_until_the_site_gets_new_data(
    client: Client, adapters: Adapters, app: Litestar
) -> None:
    owner, site, _ = await site_with_traffic(client, adapters, visitors=5)
    url = f"/api/v1/sites/{site['id']}/metrics?period=today&metrics=pageviews"
    before = (await owner.get(url)).json()["totals"]["pageviews"]

    # Written behind the app's back (no ingest): the cached answer stays.
    now = datetime.now(UTC)
    extra = generate(8, now - timedelta(minutes=3), now - timedelta(minutes=2), 3)
    await adapters.event_store.insert("events", event_rows(site["id"], extra), EVENT_COLUMNS)
    # Generated visits run on for a while: late in the evening in Paris some of them are tomorrow.
    today = now.astimezone(ZoneInfo(TZ)).date()
    added = sum(
        1
        for v in extra
        for e in v.events
        if e.event_type == "pageview" and e.timestamp.astimezone(ZoneInfo(TZ)).date() == today
    )
    assert added > 0
    assert (await owner.get(url)).json()["totals"]["pageviews"] == before

    # A pageview through /track: once it is written (by the app's batch writer, or in scaled mode
    # by a worker's drain jobs, wired as `datafast worker` wires them), the cache is dropped.
    async with contextlib.AsyncExitStack() as stack:
        if adapters.valkey is not None:
            await stack.enter_async_context(running_worker(adapters, interval=0.05))
        track = await client.post(
            "/track",
            json={
                "website_id": site["id"],
                "event_type": "pageview",
                "page_url": f"https://{site['domain']}/new",
            },
            headers={"User-Agent": CHROME_MAC},
        )
        assert track.status_code == 202, track.text
        deadline = time.monotonic() + 15
        while True:
            after = (await owner.get(url)).json()["totals"]["pageviews"]
            if after == before + added + 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    assert after == before + added + 1


async def test_too_many_requests_answer_429_with_retry_after(make_settings: SettingsFactory) -> None:
    app = __import__("datafast.app", fromlist=["create_app"]).create_app(make_settings(STATS_RATE_LIMIT="3"))
    async with AsyncTestClient(app) as client:
        owner = await signup(client)
        site = await owner.create_site()
        key = await api_key(owner)
        url = f"/api/v1/sites/{site['id']}/metrics?period=today"
        statuses = [(await client.get(url, headers=bearer(key))).status_code for _ in range(3)]
        refused = await client.get(url, headers=bearer(key))
        by_cookie = await owner.get(url)  # the same user: the same allowance, whatever the credential

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert by_cookie.status_code == 429


async def test_funnels_are_created_listed_measured_changed_and_deleted(
    client: Client, adapters: Adapters
) -> None:
    owner, site, truth = await site_with_traffic(client, adapters, visitors=60)
    base = f"/api/v1/sites/{site['id']}/funnels"
    steps = [{"kind": "page", "value": "/pricing"}, {"kind": "page", "value": "/docs"}]
    created = await owner.post(base, json={"name": "Pricing → docs", "steps": steps, "window_seconds": 3600})
    assert created.status_code == 201, created.text
    funnel_id = created.json()["id"]
    duplicate = await owner.post(base, json={"name": "Pricing → docs", "steps": steps})
    assert duplicate.status_code == 409

    listed = await owner.get(base)
    result = await owner.get(f"{base}/{funnel_id}?period=7d")
    assert [f["id"] for f in listed.json()] == [funnel_id]
    assert result.status_code == 200, result.text
    start, end = week(truth)
    expected = truth.funnel(start, end, [("page", "/pricing"), ("page", "/docs")], timedelta(hours=1))
    assert [s["visitors"] for s in result.json()["steps"]] == expected
    assert result.json()["steps"][1]["dropoff"] == expected[0] - expected[1]

    changed = await owner.patch(f"{base}/{funnel_id}", json={"window_seconds": 60})
    assert changed.status_code == 200, changed.text
    assert changed.json()["window_seconds"] == 60
    assert (await owner.delete(f"{base}/{funnel_id}")).status_code == 204
    assert (await owner.get(f"{base}/{funnel_id}")).status_code == 404


async def test_visitor_profile_and_unknown_visitor(client: Client, adapters: Adapters) -> None:
    owner, site, truth = await site_with_traffic(client, adapters, visitors=5)
    listing = await owner.get(f"/api/v1/sites/{site['id']}/visitors?period=7d&limit=2")
    assert listing.status_code == 200, listing.text
    assert len(listing.json()["visitors"]) == 2
    assert listing.json()["has_more"] is True
    visitor_id = listing.json()["visitors"][0]["visitor_id"]
    profile = await owner.get(f"/api/v1/sites/{site['id']}/visitors/{visitor_id}")
    assert profile.status_code == 200, profile.text
    own = [v for v in truth.visits if v.visitor_id == visitor_id]
    assert len(profile.json()["sessions"]) == len(own)
    assert (await owner.get(f"/api/v1/sites/{site['id']}/visitors/nobody")).status_code == 404


async def test_every_stats_route_is_in_the_openapi_schema_with_examples(client: Client) -> None:
    schema = (await client.get("/api/schema/openapi.json")).json()
    paths: dict[str, Any] = schema["paths"]
    site = "/api/v1/sites/{website_id}"
    expected = {
        f"{site}/metrics": "get",
        f"{site}/timeseries": "get",
        f"{site}/breakdown": "get",
        f"{site}/query": "post",
        f"{site}/visitors": "get",
        f"{site}/visitors/{{visitor_id}}": "get",
        f"{site}/revenue": "get",
        f"{site}/goals/conversions": "get",
        f"{site}/funnels": "post",
        f"{site}/funnels/{{funnel_id}}": "get",
    }
    for path, method in expected.items():
        assert method in paths.get(path, {}), path
        operation = paths[path][method]
        assert operation.get("summary"), path
        text = httpx.Response(200, json=operation).text
        assert '"example' in text, f"{path} has no example"


async def test_a_public_share_link_reads_the_stats_but_changes_nothing(
    client: Client, adapters: Adapters
) -> None:
    owner, site, truth = await site_with_traffic(client, adapters, visitors=5)
    link = (await owner.post(f"/api/v1/sites/{site['id']}/share-links", json={})).json()
    opened = await client.post(f"/api/v1/share/{link['slug']}/access", json={})
    assert opened.status_code == 200, opened.text
    shared = bearer(opened.json()["access_token"])
    base = f"/api/v1/sites/{site['id']}"

    metrics = await client.get(f"{base}/metrics?period=7d&metrics=visits", headers=shared)
    query = await client.post(
        f"{base}/query", json={"metrics": ["visits"], "date_range": "7d"}, headers=shared
    )
    funnel = await client.post(
        f"{base}/funnels", json={"name": "x", "steps": [{"kind": "page", "value": "/"}] * 2}, headers=shared
    )

    assert metrics.status_code == 200, metrics.text
    start, end = week(truth)
    assert metrics.json()["totals"] == truth.totals(start, end, [], ["visits"])
    assert query.status_code == 200, query.text
    assert funnel.status_code == 404  # writes do not take share links: the site is not there for them


async def test_a_share_link_reads_aggregates_never_individuals(client: Client, adapters: Adapters) -> None:
    owner, site, truth = await site_with_traffic(client, adapters, visitors=5)
    # identify: who a visitor is (what the tracker's datafast.identify stores), next to a plain prop
    when = datetime.now(UTC) - timedelta(hours=4)
    email_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    columns = ["website_id", "event_id", "event_type", "event_name", "timestamp", "visitor_id"]
    await adapters.event_store.insert(
        "events",
        [
            [site["id"], uuid.uuid4(), "identify", "identify", when, "v_known", "s_known", "/", props]
            for props in (
                {"email_hash": email_hash, "user_id": "user_42", "company": "Acme"},
                {"plan": "pro"},
            )
        ],
        [*columns, "session_id", "pathname", "props"],
    )
    await adapters.event_store.insert(
        "events",
        [
            [
                site["id"],
                uuid.uuid4(),
                "pageview",
                "pageview",
                when,
                "v_known",
                "s_known",
                "/",
                {"plan": "pro"},
            ]
        ],
        [*columns, "session_id", "pathname", "props"],
    )
    link = (await owner.post(f"/api/v1/sites/{site['id']}/share-links", json={})).json()
    opened = await client.post(f"/api/v1/share/{link['slug']}/access", json={})
    shared = bearer(opened.json()["access_token"])
    base = f"/api/v1/sites/{site['id']}"

    # Individuals: refused (problem details), whatever the route.
    refused = [
        await client.get(f"{base}/visitors?period=7d", headers=shared),
        await client.get(f"{base}/visitors/v_known", headers=shared),
        await client.get(f"{base}/breakdown?period=7d&dimension=prop:email_hash", headers=shared),
        await client.get(f"{base}/breakdown?period=7d&dimension=prop:user_id", headers=shared),
        await client.get(f"{base}/metrics?period=7d&filter=prop:email_hash=={email_hash}", headers=shared),
        await client.get(f"{base}/timeseries?period=7d&filter=prop:Email_Hash=~9f86", headers=shared),
        await client.get(f"{base}/revenue?period=7d&by=prop:email_hash", headers=shared),
        await client.get(f"{base}/goals/conversions?period=7d&filter=prop:user_id==user_42", headers=shared),
        await client.post(
            f"{base}/query",
            json={"metrics": ["visitors"], "dimensions": ["prop:email_hash"], "date_range": "7d"},
            headers=shared,
        ),
        await client.post(
            f"{base}/query",
            json={
                "metrics": ["visitors"],
                "date_range": "7d",
                "filters": [{"dimension": "prop:user_id", "operator": "is", "values": ["user_42"]}],
            },
            headers=shared,
        ),
    ]
    for response in refused:
        assert response.status_code in (403, 404), (response.request.url, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert email_hash not in response.text
        assert "user_42" not in response.text
    assert [r.status_code for r in refused[:2]] == [404, 404]  # not share routes at all
    assert {r.status_code for r in refused[2:]} == {403}

    # Other identify traits never show through a share link; plain props and aggregates still do.
    company = await client.get(f"{base}/breakdown?period=7d&dimension=prop:company", headers=shared)
    assert company.status_code == 200, company.text
    assert "Acme" not in company.text
    plan = await client.get(
        f"{base}/breakdown?period=7d&dimension=prop:plan&metrics=pageviews", headers=shared
    )
    assert plan.status_code == 200, plan.text
    start, end = week(truth)
    pro_pageviews = sum(
        1
        for v in truth.visits
        for e in v.events
        if e.event_type == "pageview" and e.props.get("plan") == "pro" and start <= e.timestamp < end
    )
    rows = {tuple(r["dimensions"]): r["metrics"] for r in plan.json()["rows"]}
    assert rows[("pro",)]["pageviews"] == pro_pageviews + 1  # our pageview; identify's "pro" is no pageview
    metrics = await client.get(f"{base}/metrics?period=7d&metrics=visits", headers=shared)
    assert metrics.status_code == 200, metrics.text
    assert metrics.json()["totals"] == truth.totals(start, end, [], ["visits"])
    funnels = await client.get(f"{base}/funnels", headers=shared)
    assert funnels.status_code == 200, funnels.text

    # Members still see individuals and identity properties.
    assert (await owner.get(f"{base}/visitors?period=7d")).status_code == 200
    assert (await owner.get(f"{base}/visitors/v_known")).status_code == 200
    by_hash = await owner.get(f"{base}/breakdown?period=7d&dimension=prop:email_hash")
    assert by_hash.status_code == 200, by_hash.text
    assert [r["dimensions"] for r in by_hash.json()["rows"] if r["dimensions"] != [""]] == [[email_hash]]
    assert "Acme" in (await owner.get(f"{base}/breakdown?period=7d&dimension=prop:company")).text

"""Reads that could be made expensive on purpose: rate-limit buckets (one per user, one per share
link and client IP), the attribution report's bounds, rate limit and cache, and ClickHouse's own
time/memory limits answering 503 problem details. Runs in both modes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from litestar.types import Receive, Scope, Send

from datafast.app import create_app
from datafast.domain.analytics.cache import ResultCache
from datafast.errors import QueryTooExpensive
from datafast.lib.adapters import Adapters
from datafast.lib.eventstore import create_event_store
from tests.conftest import SettingsFactory
from tests.integration.accounts.conftest import signup
from tests.integration.analytics.test_api import api_key, bearer, site_with_traffic
from tests.integration.analytics.traffic import (
    EVENT_COLUMNS,
    SESSION_COLUMNS,
    event_rows,
    generate,
    session_rows,
)

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def limited(make_settings: SettingsFactory) -> AsyncIterator[tuple[Litestar, Client]]:
    app = create_app(make_settings(STATS_RATE_LIMIT="3"))
    async with AsyncTestClient(app) as client:
        yield app, client


class PeerFromHeader:
    """The app behind a stand-in network: ``X-Test-Peer`` becomes the connection's peer address
    (the test client always reports "testclient"), as a server would see distinct clients."""

    def __init__(self, app: Litestar) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer = dict(scope["headers"]).get(b"x-test-peer")
            if peer is not None:
                scope["client"] = (peer.decode(), 40000)
        await self.app(scope, receive, send)


async def test_more_api_keys_do_not_raise_a_users_stats_allowance(
    limited: tuple[Litestar, Client],
) -> None:
    _, client = limited
    owner = await signup(client)
    site = await owner.create_site()
    url = f"/api/v1/sites/{site['id']}/metrics?period=today"
    keys = [await api_key(owner) for _ in range(3)]

    statuses = [(await client.get(url, headers=bearer(key))).status_code for key in keys]
    fourth_key = await client.get(url, headers=bearer(await api_key(owner)))
    by_cookie = await owner.get(url)
    other = await signup(client)  # another user has an allowance of their own
    other_site = await other.create_site()
    theirs = await other.get(f"/api/v1/sites/{other_site['id']}/metrics?period=today")

    assert statuses == [200, 200, 200]
    assert fourth_key.status_code == 429
    assert by_cookie.status_code == 429
    assert theirs.status_code == 200


async def test_share_link_viewers_are_limited_per_client_ip(make_settings: SettingsFactory) -> None:
    settings = make_settings(STATS_RATE_LIMIT="3")
    app = create_app(settings)
    async with AsyncTestClient(cast(Litestar, PeerFromHeader(app))) as client:
        owner = await signup(client, settings=settings)
        site = await owner.create_site()
        link = (await owner.post(f"/api/v1/sites/{site['id']}/share-links", json={})).json()
        opened = await client.post(f"/api/v1/share/{link['slug']}/access", json={})
        assert opened.status_code == 200, opened.text
        token = opened.json()["access_token"]
        url = f"/api/v1/sites/{site['id']}/metrics?period=today"

        def viewer(ip: str) -> dict[str, str]:
            return {**bearer(token), "X-Test-Peer": ip}

        statuses = [(await client.get(url, headers=viewer("203.0.113.7"))).status_code for _ in range(4)]
        other_viewer = await client.get(url, headers=viewer("198.51.100.9"))

    assert statuses == [200, 200, 200, 429]
    assert other_viewer.status_code == 200


async def test_attribution_is_rate_limited_like_the_stats_api(limited: tuple[Litestar, Client]) -> None:
    _, client = limited
    owner = await signup(client)
    site = await owner.create_site()
    url = f"/api/v1/sites/{site['id']}/revenue/attribution"

    statuses = [(await owner.get(url, params={"lookback_days": n})).status_code for n in (1, 2, 3, 4)]

    assert statuses == [200, 200, 200, 429]


@pytest.mark.parametrize(
    "params",
    [
        {"from": "1970-01-01T00:00:00Z", "to": "1970-02-01T00:00:00Z"},
        {"from": "1999-12-31T00:00:00Z"},
        {"to": "2099-01-01T00:00:00Z"},
        {"from": "2001-01-01T00:00:00Z"},  # over 1,830 days up to now
        {"to": "0001-01-01T00:00:00+05:00"},
        {"from": "9999-12-31T23:59:59-05:00"},
    ],
)
async def test_attribution_refuses_windows_out_of_bounds(client: Client, params: dict[str, str]) -> None:
    owner = await signup(client)
    site = await owner.create_site()

    response = await owner.get(f"/api/v1/sites/{site['id']}/revenue/attribution", params=params)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_attribution_results_are_cached_until_the_site_gets_new_data(
    client: Client, adapters: Adapters
) -> None:
    owner, site, _ = await site_with_traffic(client, adapters, visitors=5)
    url = f"/api/v1/sites/{site['id']}/revenue/attribution"
    now = datetime.now(UTC)
    window = {"from": (now - timedelta(days=7)).isoformat(), "to": (now + timedelta(hours=1)).isoformat()}

    def visitors(response: httpx.Response) -> int:
        assert response.status_code == 200, response.text
        return sum(row["visitors"] for row in response.json()["rows"])

    before = visitors(await owner.get(url, params=window))
    extra = generate(9, now - timedelta(minutes=3), now - timedelta(minutes=2), 4)
    await adapters.event_store.insert("events", event_rows(site["id"], extra), EVENT_COLUMNS)
    await adapters.event_store.insert("sessions", session_rows(site["id"], extra), SESSION_COLUMNS)
    # Written behind the app's back: the cached answer stays.
    cached = visitors(await owner.get(url, params=window))
    # What a written batch announces (a new data version): the cached answer is dropped.
    # Scaled: the test's own Valkey client (the app's belongs to the test client's loop), same data.
    cache = adapters.cache if adapters.valkey is not None else client.app.state.adapters.cache
    await ResultCache(cache, 30).invalidate([site["id"]])
    fresh = visitors(await owner.get(url, params=window))

    assert cached == before
    assert fresh > before


async def test_a_report_over_clickhouses_limits_is_a_503_problem(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(REPORT_MAX_MEMORY="2000"))  # bytes: any aggregation is over it
    async with AsyncTestClient(app) as client:
        owner = await signup(client)
        site = await owner.create_site()
        response = await owner.get(f"/api/v1/sites/{site['id']}/breakdown?dimension=page&period=30d")

    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].endswith("/query-too-expensive")
    assert "narrow the date range" in body["detail"]
    assert response.headers["retry-after"]


async def test_reads_time_out_at_max_execution_time(make_settings: SettingsFactory) -> None:
    store = create_event_store(make_settings(REPORT_MAX_SECONDS="0.05", REPORT_MAX_MEMORY="0"))
    try:
        with pytest.raises(QueryTooExpensive):
            await store.query("SELECT count() FROM numbers(10000000000) WHERE sipHash64(number) % 7 = 1")
    finally:
        await store.close()

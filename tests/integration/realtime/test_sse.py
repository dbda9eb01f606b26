"""GET /api/v1/sites/{id}/realtime: tracked events reach the dashboard's SSE stream, across processes too.

The servers are real ``datafast serve`` processes (the stream is infinite, which an in-process test
client cannot read incrementally); access rules are checked with the test client in both modes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.conftest import free_port
from tests.deployment import Deployment
from tests.helpers import CHROME_MAC
from tests.integration.realtime.sse import EventStream
from tests.integration.test_cli import Server, _env
from tests.integration.test_cli import server_factory as server_factory  # a fixture
from tests.live import LiveServer


@contextmanager
def sign_up(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=15) as client:
        email = f"live-{uuid.uuid4().hex[:8]}@example.com"
        response = client.post("/api/v1/auth/signup", json={"email": email, "password": "password1"})
        assert response.status_code == 201, response.text
        yield client


def add_site(client: httpx.Client, domain: str) -> str:
    response = client.post(
        "/api/v1/sites", json={"domain": domain}, headers={"x-csrf-token": client.cookies["datafast_csrf"]}
    )
    assert response.status_code == 201, response.text
    site_id: str = response.json()["id"]
    return site_id


def track(url: str, site_id: str, domain: str, *paths: str) -> list[str]:
    events = [
        {"website_id": site_id, "page_url": f"https://{domain}{path}", "event_id": uuid.uuid4().hex}
        for path in paths
    ]
    response = httpx.post(url + "/track", json=events, headers={"user-agent": CHROME_MAC}, timeout=15)
    assert response.status_code == 202, response.text
    ids: list[str] = response.json()["ids"]
    assert len(ids) == len(paths)
    # /track answers evt_<hex>; the stream names events by the stored UUID.
    return [str(uuid.UUID(hex=i.removeprefix("evt_"))) for i in ids]


def open_stream(url: str, client: httpx.Client, site_id: str, **headers: str) -> EventStream:
    stream = EventStream(f"{url}/api/v1/sites/{site_id}/realtime", cookies=client.cookies, headers=headers)
    assert stream.response.status_code == 200
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert stream.response.headers["cache-control"] == "no-cache"
    first = stream.next()  # sent once the subscription is live: what is tracked from now on arrives
    assert first.retry == 2000
    assert first.comments == ["subscribed"]
    return stream


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("sse-embedded")
    port = free_port()
    server = Server(
        _env(
            DATA_DIR=str(data),
            BASE_URL=f"http://127.0.0.1:{port}",
            REALTIME_HEARTBEAT="0.3",
            LOG_LEVEL="WARNING",
        ),
        data,
        port,
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()


def test_each_tracked_event_arrives_once_with_its_id_and_heartbeats_keep_the_stream_alive(
    embedded: Server,
) -> None:
    with sign_up(embedded.url) as client:
        site_id = add_site(client, "live.example")
        with open_stream(embedded.url, client, site_id) as stream:
            ids = track(embedded.url, site_id, "live.example", "/pricing", "/signup")
            first, second = stream.next_event(), stream.next_event()
            assert [first.id, second.id] == ids
            assert [m.json()["pathname"] for m in (first, second)] == ["/pricing", "/signup"]
            assert first.json()["type"] == "pageview"
            assert first.json()["id"] == first.id
            # Nothing else happens: the next thing on the wire is a heartbeat comment, not an event.
            idle = stream.next()
            assert (idle.event, idle.comments) == (None, ["ping"])


def test_reconnecting_with_last_event_id_replays_what_was_missed(embedded: Server) -> None:
    with sign_up(embedded.url) as client:
        site_id = add_site(client, "again.example")
        with open_stream(embedded.url, client, site_id) as stream:
            (seen,) = track(embedded.url, site_id, "again.example", "/one")
            assert stream.next_event().id == seen

        missed = track(embedded.url, site_id, "again.example", "/two", "/three")  # while disconnected

        with open_stream(embedded.url, client, site_id, **{"last-event-id": seen}) as stream:
            replayed = [stream.next_event(), stream.next_event()]
            assert [m.id for m in replayed] == missed
            assert [m.json()["pathname"] for m in replayed] == ["/two", "/three"]
            (live,) = track(embedded.url, site_id, "again.example", "/four")
            assert stream.next_event().id == live


def test_a_stream_shows_only_its_own_site(embedded: Server) -> None:
    with sign_up(embedded.url) as client:
        mine, other = add_site(client, "mine.example"), add_site(client, "other.example")
        with open_stream(embedded.url, client, mine) as stream:
            track(embedded.url, other, "other.example", "/elsewhere")
            (here,) = track(embedded.url, mine, "mine.example", "/here")
            message = stream.next_event()
            assert (message.id, message.json()["pathname"]) == (here, "/here")


def test_a_recorded_payment_reaches_the_stream(embedded: Server) -> None:
    with sign_up(embedded.url) as client:
        site_id = add_site(client, "shop.example")
        with open_stream(embedded.url, client, site_id) as stream:
            body = {"website_id": site_id, "amount": "19.99", "currency": "USD", "transaction_id": "order-1"}
            csrf = {"x-csrf-token": client.cookies["datafast_csrf"]}
            assert client.post("/api/v1/payments", json=body, headers=csrf).status_code == 201
            assert (
                client.post("/api/v1/payments", json=body, headers=csrf).status_code == 200
            )  # the same sale
            message = stream.next_event()
            payment = message.json()
            assert (payment["type"], payment["revenue"], payment["currency"]) == ("purchase", 1999, "USD")
            assert payment["name"] == "api"
            (page,) = track(embedded.url, site_id, "shop.example", "/thanks")
            assert stream.next_event().id == page  # the repeated payment announced nothing


async def test_realtime_needs_credentials_and_membership(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get(f"/api/v1/sites/{uuid.uuid4()}/realtime")).status_code == 401
    owner = await client.post(
        "/api/v1/auth/signup",
        json={"email": f"o-{uuid.uuid4().hex[:6]}@example.com", "password": "password1"},
    )
    assert owner.status_code == 201
    made = await client.post(
        "/api/v1/sites",
        json={"domain": "owned.example"},
        headers={"x-csrf-token": client.cookies["datafast_csrf"]},
    )
    site_id = made.json()["id"]
    client.cookies.clear()
    stranger = await client.post(
        "/api/v1/auth/signup",
        json={"email": f"s-{uuid.uuid4().hex[:6]}@example.com", "password": "password1"},
    )
    assert stranger.status_code == 201
    answer = await client.get(f"/api/v1/sites/{site_id}/realtime")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.mark.scaled
def test_scaled_an_event_accepted_by_one_web_process_reaches_a_stream_on_another(
    tmp_path: Path,
    postgres_url: str,
    valkey_url: str,
    clickhouse_url: str,
) -> None:
    """web-a captures it, a worker processes and publishes it, web-b streams it: within 2 s."""
    with Deployment(
        tmp_path,
        "scaled",
        web=2,
        workers=1,
        postgres_url=postgres_url,
        valkey_url=valkey_url,
        clickhouse_url=clickhouse_url,
        REALTIME_HEARTBEAT="0.5",
        LOG_LEVEL="WARNING",
    ) as deployment:
        _event_crosses_processes(*deployment.webs)


def _event_crosses_processes(web_a: LiveServer, web_b: LiveServer) -> None:
    # The session lives in PostgreSQL: web-b knows it too.
    with sign_up(web_a.url) as client:
        site_id = add_site(client, "scaled.example")
        stream = open_stream(web_b.url, client, site_id)
    with stream:
        started = time.monotonic()
        (event_id,) = track(web_a.url, site_id, "scaled.example", "/from-a")
        message = stream.next_event(timeout=5)
        elapsed = time.monotonic() - started
        assert message.id == event_id
        assert message.json()["pathname"] == "/from-a"
        assert elapsed < 2, f"the event took {elapsed:.2f}s to cross processes"

"""GET /metrics is not public: a bearer ``METRICS_TOKEN``, or (unset) direct loopback peers only."""

from __future__ import annotations

from pathlib import Path

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from datafast.app import create_app
from tests.conftest import METRICS_AUTH, METRICS_TOKEN, SettingsFactory, free_port
from tests.integration.test_cli import Server, _env

Client = AsyncTestClient[Litestar]


async def test_metrics_needs_the_bearer_token_when_one_is_set(client: Client) -> None:
    anonymous = await client.get("/metrics")
    wrong = await client.get("/metrics", headers={"authorization": "Bearer not-the-token-at-all"})
    right = await client.get("/metrics", headers=METRICS_AUTH)

    assert (anonymous.status_code, wrong.status_code) == (401, 401)
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert METRICS_TOKEN not in anonymous.text
    assert right.status_code == 200
    assert "datafast_events_accepted_total" in right.text


async def test_without_a_token_a_remote_peer_is_refused(make_settings: SettingsFactory) -> None:
    settings = make_settings(METRICS_TOKEN="")
    async with AsyncTestClient(create_app(settings)) as client:  # its peer is "testclient", not loopback
        response = await client.get("/metrics")

    assert response.status_code == 403
    assert "METRICS_TOKEN" in response.json()["detail"]


def test_without_a_token_only_direct_loopback_requests_are_answered(tmp_path: Path) -> None:
    port = free_port()
    server = Server(
        _env(DATA_DIR=str(tmp_path), BASE_URL=f"http://127.0.0.1:{port}", LOG_LEVEL="WARNING"), tmp_path, port
    )
    try:
        server.wait_ready()
        direct = httpx.get(f"{server.url}/metrics", timeout=10)
        proxied = httpx.get(f"{server.url}/metrics", headers={"x-forwarded-for": "203.0.113.9"}, timeout=10)
        forwarded = httpx.get(f"{server.url}/metrics", headers={"forwarded": "for=203.0.113.9"}, timeout=10)
    finally:
        server.kill()

    assert direct.status_code == 200
    assert "datafast_spool_depth" in direct.text
    assert (proxied.status_code, forwarded.status_code) == (403, 403)

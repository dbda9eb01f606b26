"""Fixtures for the revenue tests: a signed-in owner with a site, connected to stand-in providers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from saq import Worker

from datafast.lib.adapters import Adapters
from tests.conftest import METRICS_AUTH
from tests.helpers import CHROME_MAC, metric
from tests.integration.accounts.conftest import Browser, signup
from tests.integration.revenue.standins import STAND_INS, Delivery, StandIn

Client = AsyncTestClient[Litestar]


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "INGEST_FLUSH_INTERVAL": "0.05"}


@pytest.fixture
async def client(app: Litestar, ingest_worker: Worker[Any] | None) -> AsyncIterator[Client]:
    async with AsyncTestClient(app) as client:
        yield client


class Shop:
    """One founder's site as the tests drive it: traffic through /track, money through webhooks."""

    def __init__(self, client: Client, owner: Browser, site: dict[str, Any], adapters: Adapters) -> None:
        self.client, self.owner, self.site, self.adapters = client, owner, site, adapters
        self.id: str = site["id"]

    async def connect(self, standin: StandIn) -> dict[str, Any]:
        response = await self.owner.post(
            f"/api/v1/sites/{self.id}/revenue/connections",
            json={"provider": standin.name, "webhook_secret": standin.secret},
        )
        assert response.status_code == 201, response.text
        connection: dict[str, Any] = response.json()
        return connection

    async def deliver(self, connection: dict[str, Any], delivery: Delivery) -> httpx.Response:
        path = connection["webhook_url"].split("://", 1)[1].split("/", 1)[1]
        return await self.client.post("/" + path, content=delivery.body, headers=delivery.headers)

    async def deliver_all(self, connection: dict[str, Any], deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            response = await self.deliver(connection, delivery)
            assert response.status_code == 200, response.text

    async def payments(self) -> list[dict[str, Any]]:
        """The site's payments as queries see them (each key's newest version)."""
        result = await self.adapters.event_store.query(
            "SELECT * FROM payments FINAL WHERE website_id = {s:UUID} ORDER BY timestamp, kind",
            parameters={"s": self.id},
        )
        return list(result.named_results())

    async def stored_rows(self) -> int:
        """Rows physically written (a replay that wrote anything would show here)."""
        result = await self.adapters.event_store.query(
            "SELECT count() FROM payments WHERE website_id = {s:UUID}", parameters={"s": self.id}
        )
        return int(result.result_rows[0][0])

    async def net(self) -> int:
        return sum(int(p["amount_site"]) for p in await self.payments())

    async def visit(self, visitor: str, *, path: str = "/", **fields: Any) -> None:
        """A pageview through /track with the tracker's visitor cookie value."""
        body = {
            "website_id": self.id,
            "page_url": f"https://{self.site['domain']}{path}",
            "visitor_id": visitor,
            "session_id": fields.pop("session_id", f"s-{uuid.uuid4().hex[:12]}"),
            **fields,
        }
        response = await self.client.post("/track", json=body, headers={"user-agent": CHROME_MAC})
        assert response.status_code == 202, response.text

    async def drained(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = (await self.client.get("/metrics", headers=METRICS_AUTH)).text
            if metric(text, "datafast_spool_depth") == 0:
                await asyncio.sleep(0.1)
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the spool did not drain")

    async def wait_for_sessions(self, visitors: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = await self.adapters.event_store.query(
                "SELECT uniqExact(visitor_id) FROM sessions FINAL WHERE website_id = {s:UUID} AND sign = 1",
                parameters={"s": self.id},
            )
            if int(result.result_rows[0][0]) >= visitors:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected sessions of {visitors} visitors")

    async def attribution(self, **params: Any) -> dict[str | None, dict[str, Any]]:
        response = await self.owner.get(f"/api/v1/sites/{self.id}/revenue/attribution", params=params)
        assert response.status_code == 200, response.text
        return {row["value"]: row for row in response.json()["rows"]}


@pytest.fixture
async def owner(client: Client) -> Browser:
    return await signup(client)


@pytest.fixture
def currency() -> str:
    return "USD"


@pytest.fixture
async def shop(client: Client, owner: Browser, adapters: Adapters, currency: str) -> Shop:
    site = await owner.create_site(currency=currency)
    return Shop(client, owner, site, adapters)


@pytest.fixture(params=sorted(STAND_INS))
def standin(request: pytest.FixtureRequest) -> StandIn:
    return STAND_INS[request.param]()


async def history_of(shop: Shop, connection: dict[str, Any]) -> dict[str, Any]:
    """A payment connection's history import as the API shows it."""
    response = await shop.owner.get(f"/api/v1/sites/{shop.id}/revenue/connections/{connection['id']}")
    assert response.status_code == 200, response.text
    history: dict[str, Any] = response.json()["history"]
    return history


async def history_finished(shop: Shop, connection: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    """The import once done or failed; its progress never went backwards meanwhile."""
    deadline = time.monotonic() + timeout
    seen: list[float] = []
    while time.monotonic() < deadline:
        history = await history_of(shop, connection)
        seen.append(history["progress"])
        if history["status"] in ("done", "failed"):
            assert seen == sorted(seen), f"progress went backwards: {seen}"
            return history
        await asyncio.sleep(0.05)
    raise AssertionError(f"the history import did not finish: {await history_of(shop, connection)}")

"""History on connect for Polar and Lemon Squeezy: the last 90 days of orders, refunds and
subscriptions read through each one's API (local stand-ins speaking their list endpoints), stored
exactly once while the same payments also arrive by webhook before and during the import.
Truth is the stand-in's own sales."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.revenue.conftest import Shop, history_finished
from tests.integration.revenue.list_apis import LemonSqueezyListAPI, ListAPI, PolarListAPI
from tests.integration.revenue.standins import Delivery, LemonSqueezy, Polar, Sale

POLAR_TOKEN = "polar_oat_" + "h1st0ry" * 6
LS_KEY = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + "h1st0ry" * 6
VISITORS = ("v-hist-google", "v-hist-news", "v-hist-ads")


@pytest.fixture
def polar_api() -> Iterator[PolarListAPI]:
    with PolarListAPI(POLAR_TOKEN) as api:
        yield api


@pytest.fixture
def ls_api() -> Iterator[LemonSqueezyListAPI]:
    with LemonSqueezyListAPI(LS_KEY) as api:
        yield api


@pytest.fixture
def env(env: dict[str, str], polar_api: PolarListAPI, ls_api: LemonSqueezyListAPI) -> dict[str, str]:
    return {**env, "POLAR_API_BASE": polar_api.url, "LEMONSQUEEZY_API_BASE": ls_api.url}


async def _start(shop: Shop, connection: dict[str, Any], key: str) -> dict[str, Any]:
    started = await shop.owner.post(
        f"/api/v1/sites/{shop.id}/revenue/connections/{connection['id']}/history", json={"api_key": key}
    )
    assert started.status_code == 202, started.text
    body: dict[str, Any] = started.json()
    return body


async def _import_once(shop: Shop, standin: Polar | LemonSqueezy, api: ListAPI, key: str) -> list[Sale]:
    """The same story for both: 120 one-off payments over 80 days (two pages or more), two older
    than 90 days, a subscription with a renewal, a partial refund; five payments delivered by
    webhook before the import, ten more while it runs. Returns the one-off sales."""
    for visitor in VISITORS:
        await shop.visit(visitor, path=f"/?utm_source={visitor}")
    await shop.drained()
    await shop.wait_for_sessions(len(VISITORS))
    now = datetime.now(UTC)
    sales: list[tuple[Sale, list[Delivery]]] = []
    for n in range(120):
        at = now - timedelta(days=80 * n / 120, minutes=5)
        sales.append(standin.payment(1000 + n, visitor=VISITORS[n % 3], at=at))
    old = [standin.payment(99_900, visitor=VISITORS[0], at=now - timedelta(days=120)) for _ in range(2)]
    first, started = standin.payment(
        4900, visitor=VISITORS[1], subscription=True, at=now - timedelta(days=40)
    )
    renewal, renewed = standin.renewal(first, at=now - timedelta(days=10))
    for _, deliveries in [*sales, *old, (first, started), (renewal, renewed)]:
        api.add(deliveries)  # type: ignore[attr-defined]
    api.add(standin.refund(sales[3][0], 0, 400, at=now - timedelta(days=2)))  # type: ignore[attr-defined]
    if isinstance(standin, Polar):
        meta = {"datafast_visitor_id": VISITORS[1]}
        sub = standin.subscription("created", first, "active", 4900, now - timedelta(days=40), metadata=meta)
        api.add([sub])  # type: ignore[attr-defined]
    else:  # its latest version: updated by the renewal, renewing in 20 days
        custom = {"datafast_visitor_id": VISITORS[1]}
        for at in (now - timedelta(days=40), now - timedelta(days=10)):
            state = standin.subscription(
                "updated",
                first,
                "active",
                at,
                created=now - timedelta(days=40),
                renews_at=at + timedelta(days=30),
                custom=custom,
            )
            api.add([state])  # type: ignore[attr-defined]
    truth = sum(s.amount for s, _ in sales) + first.amount + renewal.amount - 400

    connection = await shop.connect(standin)
    for _, deliveries in sales[:5]:  # delivered by webhook before the import
        await shop.deliver_all(connection, [standin.resign(d) for d in deliveries])
    refused = await shop.owner.post(
        f"/api/v1/sites/{shop.id}/revenue/connections/{connection['id']}/history", json={"api_key": "short"}
    )
    assert refused.status_code == 400, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")

    await _start(shop, connection, key)
    for _, deliveries in sales[100:110]:  # by webhook while the import runs
        await shop.deliver_all(connection, [standin.resign(d) for d in deliveries])
    history = await history_finished(shop, connection)

    assert history["status"] == "done", history
    assert history["progress"] == 1.0
    assert len(api.requests) >= 3, api.requests  # paged
    payments = [p for p in await shop.payments() if p["kind"] == "payment"]
    assert len(payments) == len(sales) + 2  # and the subscription's first payment and its renewal
    assert len({p["payment_key"] for p in payments}) == len(payments)
    assert all(p["amount"] != 99_900 for p in payments), "payments older than 90 days are not imported"
    assert await shop.net() == truth

    assert await _mrr_now(shop) == 4900

    # Importing again stores nothing new.
    rows = await shop.stored_rows()
    await _start(shop, connection, key)
    assert (await history_finished(shop, connection))["status"] == "done"
    assert await shop.net() == truth
    assert await shop.stored_rows() == rows
    return [s for s, _ in sales]


async def _mrr_now(shop: Shop) -> int:
    month = datetime.now(UTC).strftime("%Y-%m")
    report = await shop.owner.get(
        f"/api/v1/sites/{shop.id}/subscriptions", params={"from": month, "to": month}
    )
    assert report.status_code == 200, report.text
    mrr: int = report.json()["months"][-1]["mrr"]
    return mrr


async def test_connecting_polar_imports_90_days_once_while_webhooks_arrive(
    shop: Shop, polar_api: PolarListAPI
) -> None:
    standin = Polar()
    await _import_once(shop, standin, polar_api, POLAR_TOKEN)
    # Polar's orders carry their checkout metadata: every payment is linked to its visitor.
    payments = [p for p in await shop.payments() if p["kind"] == "payment"]
    assert {p["visitor_id"] for p in payments} == set(VISITORS)


async def test_connecting_lemon_squeezy_imports_90_days_once_while_webhooks_arrive(
    shop: Shop, ls_api: LemonSqueezyListAPI
) -> None:
    standin = LemonSqueezy()
    sales = await _import_once(shop, standin, ls_api, LS_KEY)
    # The API returns no checkout custom data: only the payments that also came by webhook name
    # their visitor (the others would link by an identified email).
    by_order = {p["transaction_id"]: p["visitor_id"] for p in await shop.payments() if p["kind"] == "payment"}
    webhooked = {s.id for s in sales[:5] + sales[100:110]}
    assert {by_order[s.id] for s in sales if s.id in webhooked} <= set(VISITORS)
    assert all(by_order[s.id] for s in sales if s.id in webhooked)
    assert not any(by_order[s.id] for s in sales if s.id not in webhooked)


async def test_a_key_the_provider_refuses_fails_the_import_with_its_reason(
    shop: Shop, polar_api: PolarListAPI
) -> None:
    connection = await shop.connect(Polar())
    await _start(shop, connection, "polar_oat_" + "wrong" * 8)
    history = await history_finished(shop, connection)
    assert history["status"] == "failed"
    assert "Polar refused the key" in history["error"]

"""History on connect: connecting Stripe with a read key imports the last 90 days of payments,
refunds and subscriptions through Stripe's API (a local stand-in speaking its list endpoints),
exactly once, while the same payments also arrive by webhook before and during the import; the
progress reaches 100%. Truth is the stand-in's own sales."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.revenue.conftest import Shop, history_finished, history_of
from tests.integration.revenue.standins import Delivery, Sale, Stripe
from tests.integration.revenue.stripe_api import StripeListAPI

READ_KEY = "rk_test_" + "h1st0ry" * 6
VISITORS = ("v-hist-google", "v-hist-news", "v-hist-ads")


@pytest.fixture
def stripe_api() -> Iterator[StripeListAPI]:
    with StripeListAPI(READ_KEY) as api:
        yield api


@pytest.fixture
def env(env: dict[str, str], stripe_api: StripeListAPI) -> dict[str, str]:
    return {**env, "STRIPE_API_BASE": stripe_api.url}


async def test_connecting_stripe_imports_90_days_once_while_webhooks_arrive(
    shop: Shop, stripe_api: StripeListAPI
) -> None:
    for visitor in VISITORS:
        await shop.visit(visitor, path=f"/?utm_source={visitor}")
    await shop.drained()
    await shop.wait_for_sessions(len(VISITORS))
    standin = Stripe()
    now = datetime.now(UTC)
    sales: list[tuple[Sale, list[Delivery]]] = []
    # 130 one-off payments over the last 80 days (two pages of Checkout Sessions), 2 older ones.
    for n in range(130):
        at = now - timedelta(days=80 * n / 130, minutes=5)
        sales.append(standin.payment(1000 + n, visitor=VISITORS[n % 3], at=at))
    old = [standin.payment(99_900, visitor=VISITORS[0], at=now - timedelta(days=120)) for _ in range(2)]
    # A subscription that started 40 days ago and renewed 10 days ago; one payment refunded in part.
    first, started = standin.payment(
        4900, visitor=VISITORS[1], subscription=True, at=now - timedelta(days=40)
    )
    renewal, renewed = standin.renewal(first, at=now - timedelta(days=10))
    sub_event = standin.subscription("created", first, "active", 4900, now - timedelta(days=40))
    refund = standin.refund(sales[3][0], 0, 400, at=now - timedelta(days=2))
    for _, deliveries in [*sales, *old, (first, started), (renewal, renewed)]:
        stripe_api.add(deliveries)
    stripe_api.add([sub_event, *refund])
    truth = sum(s.amount for s, _ in sales) + first.amount + renewal.amount - 400

    connection = await shop.connect(standin)
    for _, deliveries in sales[:5]:  # delivered by webhook before the import
        await shop.deliver_all(connection, [standin.resign(d) for d in deliveries])
    refused = await shop.owner.post(
        f"/api/v1/sites/{shop.id}/revenue/connections/{connection['id']}/history",
        json={"api_key": "pk_live_nope"},
    )
    assert refused.status_code == 400, refused.text

    stripe_api.paused.set()  # the second page of sessions waits while webhooks arrive
    started_at = await shop.owner.post(
        f"/api/v1/sites/{shop.id}/revenue/connections/{connection['id']}/history", json={"api_key": READ_KEY}
    )
    assert started_at.status_code == 202, started_at.text
    assert started_at.json()["history"]["status"] in ("queued", "running", "done")
    assert await asyncio.to_thread(stripe_api.reached.wait, 30)
    assert (await history_of(shop, connection))["status"] == "running"
    for _, deliveries in sales[100:110]:  # on the page not read yet, and by webhook meanwhile
        await shop.deliver_all(connection, [standin.resign(d) for d in deliveries])
    stripe_api.resume.set()
    history = await history_finished(shop, connection)

    assert history["status"] == "done", history
    assert history["progress"] == 1.0
    payments = [p for p in await shop.payments() if p["kind"] == "payment"]
    assert len(payments) == len(sales) + 2  # the subscription's first payment and its renewal
    assert len({p["payment_key"] for p in payments}) == len(payments)
    assert all(p["amount"] != 99_900 for p in payments), "payments older than 90 days are not imported"
    assert await shop.net() == truth
    linked = {p["visitor_id"] for p in payments}
    assert linked == set(VISITORS)  # linked from the sessions' metadata
    states = await shop.adapters.event_store.query(
        "SELECT count() FROM subscription_states FINAL WHERE website_id = {s:UUID}", parameters={"s": shop.id}
    )
    assert states.result_rows[0][0] >= 1

    # Importing again stores nothing new.
    rows = await shop.stored_rows()
    again = await shop.owner.post(
        f"/api/v1/sites/{shop.id}/revenue/connections/{connection['id']}/history", json={"api_key": READ_KEY}
    )
    assert again.status_code == 202, again.text
    assert (await history_finished(shop, connection))["status"] == "done"
    assert await shop.net() == truth
    assert await shop.stored_rows() == rows


async def test_a_key_stripe_refuses_fails_the_import_with_its_reason(
    shop: Shop, stripe_api: StripeListAPI
) -> None:
    connection = await shop.connect(Stripe())
    started = await shop.owner.post(
        f"/api/v1/sites/{shop.id}/revenue/connections/{connection['id']}/history",
        json={"api_key": "rk_test_" + "wrong" * 8, "days": 30},
    )
    assert started.status_code == 202, started.text
    history = await history_finished(shop, connection)
    assert history["status"] == "failed"
    assert "refused the key" in history["error"]
    listed = await shop.owner.get(f"/api/v1/sites/{shop.id}/revenue/connections")
    assert all("api_key" not in str(c) or "api_key_encrypted" not in c for c in listed.json())
    assert READ_KEY not in listed.text

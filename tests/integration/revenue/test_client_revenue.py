"""Tracker revenue is unverified: it counts only while a site has no verified source of money
(no provider connected, no payment stored), unless the owner says ``always`` or ``never``, and
one tracker event counts for at most the site's cap.

Anyone who knows a site's public id can send ``POST /track`` a purchase. Expected numbers are
written out here from what each test sends (amounts in cents: the tracker's 49.00 is 4900).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from tests.integration.revenue.conftest import Shop
from tests.integration.revenue.standins import Stripe

MONEY = ("revenue", "purchases", "average_order_value", "revenue_per_visitor")


async def _purchase(shop: Shop, visitor: str, revenue: float) -> None:
    await shop.visit(visitor, path="/thanks", event_type="purchase", revenue=revenue, currency="USD")


async def _totals(shop: Shop) -> dict[str, Any]:
    response = await shop.owner.get(
        f"/api/v1/sites/{shop.id}/metrics", params={"period": "7d", "metrics": ",".join(MONEY)}
    )
    assert response.status_code == 200, response.text
    totals: dict[str, Any] = response.json()["totals"]
    return totals


async def _by_source(shop: Shop) -> int:
    """Revenue summed over a breakdown (every source, and money credited to no visit)."""
    response = await shop.owner.get(
        f"/api/v1/sites/{shop.id}/breakdown", params={"period": "7d", "metrics": "revenue"}
    )
    assert response.status_code == 200, response.text
    return sum(int(row["metrics"]["revenue"]) for row in response.json()["rows"])


async def _attributed(shop: Shop) -> int:
    return sum(int(row["revenue"]) for row in (await shop.attribution()).values())


async def _visitors_revenue(shop: Shop) -> int:
    response = await shop.owner.get(f"/api/v1/sites/{shop.id}/visitors", params={"period": "7d"})
    assert response.status_code == 200, response.text
    return sum(int(v["revenue"]) for v in response.json()["visitors"])


async def _exported(shop: Shop) -> dict[int, int]:
    """The CSV export's purchases: the revenue the script reported → what it counts for."""
    response = await shop.owner.get(f"/api/v1/sites/{shop.id}/export")
    assert response.status_code == 200, response.text
    rows = csv.DictReader(io.StringIO(response.text))
    return {int(r["revenue"]): int(r["counted_revenue"]) for r in rows if r["event_type"] == "purchase"}


async def _profile(shop: Shop, visitor: str) -> tuple[int, list[tuple[int, int]]]:
    """A visitor's revenue, and each purchase's (reported, counted) amounts."""
    response = await shop.owner.get(f"/api/v1/sites/{shop.id}/visitors/{visitor}")
    assert response.status_code == 200, response.text
    profile = response.json()
    events = [e for s in profile["sessions"] for e in s["journey"]] + profile["other_events"]
    purchases = [(e["revenue"], e["counted_revenue"]) for e in events if e["event_type"] == "purchase"]
    assert sum(s["revenue"] for s in profile["sessions"]) <= profile["revenue"]
    return profile["revenue"], purchases


async def _settings(shop: Shop, **body: Any) -> dict[str, Any]:
    response = await shop.owner.patch(f"/api/v1/sites/{shop.id}", json=body)
    assert response.status_code == 200, response.text
    site: dict[str, Any] = response.json()
    return site


async def _everywhere(shop: Shop) -> list[int]:
    """The same money as the totals, a breakdown, the attribution report and the visitors list."""
    return [
        int((await _totals(shop))["revenue"]),
        await _by_source(shop),
        await _attributed(shop),
        await _visitors_revenue(shop),
    ]


async def test_tracker_revenue_counts_until_a_provider_is_connected(shop: Shop) -> None:
    await shop.visit("v-buyer")
    await _purchase(shop, "v-buyer", 49.00)
    await shop.drained()
    await shop.wait_for_sessions(1)

    # No verified source yet: the tracker is all the site has, so its purchase counts.
    totals = await _totals(shop)
    assert (totals["revenue"], totals["purchases"], totals["average_order_value"]) == (4900, 1, 4900)
    assert totals["revenue_per_visitor"] == pytest.approx(4900)
    assert await _everywhere(shop) == [4900] * 4

    # Connected Stripe: from now on only verified money counts (even before its first webhook).
    stripe = Stripe()
    connection = await shop.connect(stripe)
    totals = await _totals(shop)
    assert (totals["revenue"], totals["purchases"], totals["average_order_value"]) == (0, 0, 0)
    assert await _everywhere(shop) == [0] * 4

    _, deliveries = stripe.payment(3000, visitor="v-buyer")
    await shop.deliver_all(connection, deliveries)
    totals = await _totals(shop)
    assert (totals["revenue"], totals["purchases"]) == (3000, 1)
    assert await _everywhere(shop) == [3000, 3000, 3000, 0]  # the visitors list shows tracker revenue


async def test_a_payment_through_the_payments_api_makes_tracker_revenue_unverified(shop: Shop) -> None:
    await _purchase(shop, "v-forger", 1_000_000)  # anyone may send this to /track
    await shop.drained()
    assert (await _totals(shop))["revenue"] == 1_000_000  # capped: 10,000.00 (the default cap)

    key = await shop.owner.post("/api/v1/api-keys", json={"name": "server"})
    headers = {"Authorization": f"Bearer {key.json()['key']}"}
    paid = await shop.client.post(
        "/api/v1/payments",
        json={"website_id": shop.id, "amount": "12.50", "currency": "USD", "transaction_id": "order-1"},
        headers=headers,
    )
    assert paid.status_code == 201, paid.text

    totals = await _totals(shop)
    assert (totals["revenue"], totals["purchases"]) == (1250, 1)
    assert await _attributed(shop) == 1250


async def test_always_counts_tracker_revenue_capped_and_never_never(shop: Shop) -> None:
    stripe = Stripe()
    connection = await shop.connect(stripe)
    _, deliveries = stripe.payment(3000, visitor="v-buyer")
    await shop.deliver_all(connection, deliveries)
    await shop.visit("v-buyer")
    await shop.visit("v-forger")
    await _purchase(shop, "v-buyer", 20.00)
    await _purchase(shop, "v-forger", 1_000_000)
    await shop.drained()
    await shop.wait_for_sessions(2)
    assert (await _totals(shop))["revenue"] == 3000  # auto, with a provider: the payment only
    assert await _exported(shop) == {2000: 0, 100_000_000: 0}

    site = await _settings(shop, count_client_revenue="always")
    assert (site["count_client_revenue"], site["client_revenue_cap"]) == ("always", 10_000)
    capped = 3000 + 2000 + 1_000_000  # the forged million counts for the cap, 10,000.00
    totals = await _totals(shop)
    assert (totals["revenue"], totals["purchases"]) == (capped, 3)
    assert totals["average_order_value"] == pytest.approx(capped / 3)
    assert totals["revenue_per_visitor"] == pytest.approx(capped / 2)
    assert await _everywhere(shop) == [capped, capped, capped, 2000 + 1_000_000]
    assert await _exported(shop) == {2000: 2000, 100_000_000: 1_000_000}  # as sent, and as counted
    assert await _profile(shop, "v-forger") == (1_000_000, [(100_000_000, 1_000_000)])

    await _settings(shop, client_revenue_cap=15)
    assert await _everywhere(shop) == [3000 + 1500 + 1500, 3000 + 1500 + 1500, 3000 + 3000, 3000]

    await _settings(shop, count_client_revenue="never")
    totals = await _totals(shop)
    assert (totals["revenue"], totals["purchases"]) == (3000, 1)
    assert await _everywhere(shop) == [3000, 3000, 3000, 0]
    assert await _exported(shop) == {2000: 0, 100_000_000: 0}
    assert await _profile(shop, "v-forger") == (0, [(100_000_000, 0)])


async def test_never_leaves_tracker_revenue_out_even_without_a_provider(shop: Shop) -> None:
    await _purchase(shop, "v-buyer", 49.00)
    await shop.drained()
    assert (await _totals(shop))["revenue"] == 4900

    await _settings(shop, count_client_revenue="never")

    assert (await _totals(shop))["revenue"] == 0
    await _settings(shop, count_client_revenue="auto")
    assert (await _totals(shop))["revenue"] == 4900


async def test_bad_revenue_settings_are_refused_with_a_problem(shop: Shop) -> None:
    for body in (
        {"count_client_revenue": "sometimes"},
        {"client_revenue_cap": 0},
        {"client_revenue_cap": -5},
        {"client_revenue_cap": "lots"},
    ):
        response = await shop.owner.patch(f"/api/v1/sites/{shop.id}", json=body)
        assert response.status_code == 400, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    site = (await shop.owner.get(f"/api/v1/sites/{shop.id}")).json()
    assert (site["count_client_revenue"], site["client_revenue_cap"]) == ("auto", 10_000)

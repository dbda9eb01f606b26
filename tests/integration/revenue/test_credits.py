"""Credited visits kept with the money (``credits``): each write moves exactly the credits it should,
and reports read them only while they are complete — with the numbers of attribution at query time.

Traffic through /track and money through signed webhooks, as in production; the rows of
``credits`` are read back and compared with what the attribution rules give for that traffic.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from datafast.domain.analytics.conversions import MODELS, MoneyWindow
from datafast.domain.analytics.credits import Credits
from tests.integration.revenue.conftest import Shop
from tests.integration.revenue.standins import Stripe

Credit = tuple[str, str, str, str]
"""(conversion key, model, credited session, its source)"""


def _ago(hours: float) -> dict[str, float]:
    now = time.time() * 1000
    return {"timestamp": now - hours * 3600_000, "sent_at": now}


async def _credits(shop: Shop) -> set[Credit]:
    result = await shop.adapters.event_store.query(
        "SELECT key, model, session_id, referrer_source FROM credits FINAL WHERE website_id = {s:UUID}",
        parameters={"s": shop.id},
    )
    return {(str(k), str(m), str(s), str(src)) for k, m, s, src in result.result_rows}


async def _keys(shop: Shop) -> dict[int, str]:
    """Payment key by amount (refunds negative)."""
    return {int(p["amount"]): str(p["payment_key"]) for p in await shop.payments()}


def _all_models(key: str, session: str, source: str) -> set[Credit]:
    return {(key, model, session, source) for model in MODELS}


async def _complete(shop: Shop) -> bool:
    now = datetime.now(UTC)
    return await Credits(shop.adapters.event_store).complete(
        MoneyWindow(shop.id, "USD", now - timedelta(days=30), now + timedelta(minutes=1), "first")
    )


async def _same_as_query_time(shop: Shop) -> None:
    """The report from the credits (lookback 30, the kept one) equals the query-time attribution
    of a window that holds the same visits (31 days: no visit here is older than a day)."""
    for model in MODELS:
        for dimension in ("source", "utm_source", "entry_page", "country"):
            kept = await shop.attribution(model=model, dimension=dimension)
            computed = await shop.attribution(model=model, dimension=dimension, lookback_days=31)
            assert _strip(kept) == _strip(computed), (model, dimension)


def _strip(rows: dict[str | None, dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    return {k: {n: v for n, v in row.items() if n != "lookback_days"} for k, row in rows.items()}


async def test_a_late_link_a_refund_and_a_renewal_move_exactly_their_credits(shop: Shop) -> None:
    stripe = Stripe()
    connection = await shop.connect(stripe)
    google = {"session_id": "s-google"}
    await shop.visit(
        "v-a", path="/?utm_source=google", referrer="https://www.google.com/", **google, **_ago(3)
    )
    await shop.visit(
        "v-b", path="/?utm_source=twitter", referrer="https://t.co/x", session_id="s-b", **_ago(2)
    )
    await shop.drained()
    await shop.wait_for_sessions(2)

    # A subscription paid by v-b (metadata): its credits, nothing else.
    first, deliveries = stripe.payment(3000, visitor="v-b", session="s-b", subscription=True)
    await shop.deliver_all(connection, deliveries)
    keys = await _keys(shop)
    b_credits = _all_models(keys[3000], "s-b", "Twitter")
    assert await _credits(shop) == b_credits

    # A payment with only an email: no visitor, so no credit (its money is unattributed)...
    await shop.deliver_all(connection, stripe.payment(4999, email="ann@example.com")[1])
    keys = await _keys(shop)
    assert await _credits(shop) == b_credits
    # ...until v-a identifies with that email (after the payment): the late link adds its credits.
    await shop.visit(
        "v-a",
        path="/welcome",
        event_type="identify",
        props={"email": "ann@example.com"},
        **google,
        **_ago(0.5),
    )
    await shop.drained()
    a_credits = _all_models(keys[4999], "s-google", "Google")
    assert await _credits(shop) == b_credits | a_credits

    # A refund is credited where its payment was: its own rows, the others unchanged.
    await shop.deliver_all(connection, stripe.refund(first, 0, 1000))
    keys = await _keys(shop)
    refund_credits = _all_models(keys[-1000], "s-b", "Twitter")
    assert await _credits(shop) == b_credits | a_credits | refund_credits

    # A renewal inherits the first payment's visitor and window: credited to the same visit.
    await shop.deliver_all(connection, stripe.renewal(first)[1])
    renewal = next(
        p["payment_key"] for p in await shop.payments() if p["is_renewal"] and p["kind"] == "payment"
    )
    renewal_credits = _all_models(str(renewal), "s-b", "Twitter")
    assert await _credits(shop) == b_credits | a_credits | refund_credits | renewal_credits

    assert await _complete(shop)
    await _same_as_query_time(shop)


@pytest.mark.parametrize("visitor", ["v-late", "v-läte-日本"])  # matched by its bytes' CRC-32 first
async def test_a_visit_ingested_after_its_payment_takes_the_credit(shop: Shop, visitor: str) -> None:
    """The payment arrives before the visit that brought it is processed (an offline batch, a slow
    tracker): the credit is refreshed when that visit is inserted."""
    stripe = Stripe()
    connection = await shop.connect(stripe)
    await shop.visit("v-other", path="/", session_id="s-other", **_ago(0.5))
    await shop.drained()
    await shop.deliver_all(connection, stripe.payment(8800, visitor=visitor)[1])
    key = (await _keys(shop))[8800]
    assert await _credits(shop) == _all_models(key, "", "")  # no visit in the window yet

    await shop.visit(
        visitor, path="/?utm_source=newsletter", referrer="https://t.co/n", session_id="s-late", **_ago(1)
    )
    await shop.drained()
    await shop.wait_for_sessions(2)
    assert await _credits(shop) == _all_models(key, "s-late", "newsletter")  # utm_source wins

    assert await _complete(shop)
    await _same_as_query_time(shop)


async def test_tracker_revenue_gets_its_credits_when_processed(shop: Shop) -> None:
    await shop.visit(
        "v-buyer", path="/?utm_source=reddit", referrer="https://www.reddit.com/", session_id="s-r"
    )
    await shop.visit(
        "v-buyer", path="/thanks", event_type="purchase", revenue=19.5, currency="USD", session_id="s-r"
    )
    await shop.drained()
    result = await shop.adapters.event_store.query(
        "SELECT concat('event:', toString(event_id)) FROM revenue_events WHERE website_id = {s:UUID}",
        parameters={"s": shop.id},
    )
    [(key,)] = result.result_rows
    assert await _credits(shop) == _all_models(str(key), "s-r", "Reddit")
    assert await _complete(shop)
    await _same_as_query_time(shop)


async def test_the_stats_api_reads_the_kept_credits_only_while_they_answer(shop: Shop) -> None:
    """Revenue by source from the kept credits (the default lookback) equals attribution at query
    time (31 days), unattributed money included; with a credit gone (a write whose refresh has not
    landed), the same answer, attributed at query time."""
    stripe = Stripe()
    connection = await shop.connect(stripe)
    await shop.visit(
        "v-a", path="/?utm_source=google", referrer="https://www.google.com/", session_id="s-a", **_ago(3)
    )
    await shop.visit("v-b", path="/", referrer="https://t.co/x", session_id="s-b", **_ago(2))
    await shop.visit("v-c", path="/pricing", session_id="s-c", **_ago(1))
    await shop.drained()
    await shop.wait_for_sessions(3)
    await shop.deliver_all(connection, stripe.payment(3000, visitor="v-a", session="s-a")[1])
    await shop.deliver_all(connection, stripe.payment(1250, visitor="v-b", session="s-b")[1])
    await shop.deliver_all(connection, stripe.payment(999, email="nobody@example.com")[1])  # no visitor

    async def rows(**extra: Any) -> list[dict[str, Any]]:
        body = {
            "date_range": "7d",
            "dimensions": ["source"],
            "metrics": [
                *("revenue", "visitors", "conversions", "conversion_rate", "revenue_per_visitor"),
                *("purchases", "average_order_value", "visits", "bounce_rate"),
            ],
            **extra,
        }
        response = await shop.owner.post(f"/api/v1/sites/{shop.id}/query", json=body)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["rows"]
        return found

    assert await _complete(shop)
    kept = await rows()
    assert [row["dimensions"][0] for row in kept][:3] == ["Google", "Twitter", None]  # then v-c's, no money
    assert kept == await rows(lookback_days=31)
    by_revenue = await rows(order_by=[{"field": "revenue", "direction": "asc"}], limit=2, offset=1)
    assert by_revenue == await rows(
        order_by=[{"field": "revenue", "direction": "asc"}], limit=2, offset=1, lookback_days=31
    )

    await shop.adapters.event_store.command(
        "ALTER TABLE credits DELETE WHERE website_id = {s:UUID} AND session_id = 's-b'",
        {"s": shop.id},
        settings={"mutations_sync": 1},
    )
    assert not await _complete(shop)
    assert await rows(limit=50) == kept

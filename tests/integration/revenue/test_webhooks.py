"""Each provider's webhooks, signed as the provider signs: stored once, replays and bad signatures
store nothing, the double-count trap counts once, refunds net out, renewals inherit their source."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.revenue.conftest import Shop
from tests.integration.revenue.standins import STAND_INS, Delivery, StandIn


async def test_a_valid_delivery_is_stored_once_and_a_replay_stores_nothing(
    shop: Shop, standin: StandIn
) -> None:
    connection = await shop.connect(standin)
    _, deliveries = standin.payment(4999, visitor="v-replay")

    first = await shop.deliver(connection, deliveries[0])
    assert first.status_code == 200, first.text
    assert first.json()["stored"] == 1
    rows_after_first = await shop.stored_rows()
    replay = await shop.deliver(connection, deliveries[0])

    assert replay.status_code == 200
    assert replay.json()["duplicate"] is True
    assert await shop.stored_rows() == rows_after_first == 1
    [payment] = await shop.payments()
    assert (payment["amount"], payment["currency"], payment["kind"]) == (4999, "USD", "payment")
    assert (payment["amount_site"], payment["provider"]) == (4999, standin.name)
    assert (payment["visitor_id"], payment["link"]) == ("v-replay", "metadata")


async def test_a_redelivery_under_a_new_delivery_id_is_the_same_payment(shop: Shop, standin: StandIn) -> None:
    """Idempotent by payment id too: the same payload resent as a new delivery counts once."""
    connection = await shop.connect(standin)
    _, deliveries = standin.payment(1500)
    await shop.deliver_all(connection, deliveries)
    resent = _as_new_delivery(standin, deliveries[0])

    response = await shop.deliver(connection, resent)

    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 0
    assert [p["amount"] for p in await shop.payments()] == [1500]


def _as_new_delivery(standin: StandIn, delivery: Delivery) -> Delivery:
    if standin.name == "stripe":
        body = delivery.body.replace(b'"evt_', b'"evt_again', 1)
        return standin.sign(body, {})
    if standin.name == "paddle":
        return standin.sign(delivery.body.replace(b'"ntf_01', b'"ntf_again', 1), {})
    if standin.name == "lemonsqueezy":  # the body is the delivery id: change a byte outside the payment
        return standin.sign(delivery.body + b"\n", {"X-Event-Name": delivery.headers["X-Event-Name"]})
    headers = {
        k: v for k, v in delivery.headers.items() if k.lower() not in ("webhook-id", "x-shopify-webhook-id")
    }
    return standin.sign(delivery.body, headers)


async def test_a_bad_signature_is_refused_with_400_and_nothing_is_stored(
    shop: Shop, standin: StandIn
) -> None:
    connection = await shop.connect(standin)
    _, deliveries = standin.payment(2500, visitor="v-bad")
    forged = standin.badly_signed(deliveries[0])
    tampered = Delivery(deliveries[0].body.replace(b"v-bad", b"v-evil"), deliveries[0].headers)
    unsigned = Delivery(deliveries[0].body, {"Content-Type": "application/json"})

    for delivery in (forged, tampered, unsigned):
        response = await shop.deliver(connection, delivery)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"

    assert await shop.stored_rows() == 0
    # the genuine delivery still goes through afterwards (a refused one is not remembered)
    assert (await shop.deliver(connection, deliveries[0])).json()["stored"] == 1


# Lemon Squeezy and Shopify sign no timestamp: their replays are stopped by de-duplication alone.
@pytest.mark.parametrize("standin", sorted(n for n, s in STAND_INS.items() if s.has_timestamp), indirect=True)
async def test_a_stale_timestamp_is_refused_where_the_scheme_has_one(shop: Shop, standin: StandIn) -> None:
    connection = await shop.connect(standin)
    _, deliveries = standin.payment(2500)

    response = await shop.deliver(connection, standin.stale(deliveries[0]))

    assert response.status_code == 400
    assert await shop.stored_rows() == 0


async def test_unknown_connections_and_providers_answer_404(shop: Shop, standin: StandIn) -> None:
    connection = await shop.connect(standin)
    _, deliveries = standin.payment(2500)
    other = "lemonsqueezy" if standin.name != "lemonsqueezy" else "stripe"

    missing = await shop.client.post(
        f"/webhooks/{standin.name}/{uuid.uuid4()}", content=deliveries[0].body, headers=deliveries[0].headers
    )
    wrong_provider = await shop.client.post(
        f"/webhooks/{other}/{connection['id']}", content=deliveries[0].body, headers=deliveries[0].headers
    )
    unknown = await shop.client.post(f"/webhooks/paypal/{connection['id']}", content=b"{}")

    assert (missing.status_code, wrong_provider.status_code, unknown.status_code) == (404, 404, 404)
    assert await shop.stored_rows() == 0


async def test_garbage_bodies_never_cause_a_500(shop: Shop, standin: StandIn) -> None:
    connection = await shop.connect(standin)
    for body in (b"", b"not json", b"[1, 2]", b'{"data": 5, "type": "order.paid"}', b"\xff\xfe"):
        response = await shop.deliver(
            connection,
            standin.sign(body, {"X-Event-Name": "order_created", "X-Shopify-Topic": "orders/paid"}),
        )
        assert response.status_code in (200, 400), (body, response.text)
    assert await shop.stored_rows() == 0


async def test_the_double_count_trap_counts_once(shop: Shop, standin: StandIn) -> None:
    """Stripe: checkout.session.completed + invoice.paid (subscription_create); Lemon Squeezy:
    order_created + subscription_payment_success (initial); in either order."""
    connection = await shop.connect(standin)
    _, deliveries = standin.payment(9900, visitor="v-trap", subscription=True)
    _, one_off = standin.payment(1000, visitor="v-trap2")

    await shop.deliver_all(connection, list(reversed(deliveries)))
    await shop.deliver_all(connection, one_off)

    payments = await shop.payments()
    assert sorted(p["amount"] for p in payments) == [1000, 9900]
    assert await shop.net() == 10900
    assert {p["visitor_id"] for p in payments} == {"v-trap", "v-trap2"}


async def test_partial_then_full_refund_nets_to_zero(shop: Shop, standin: StandIn) -> None:
    connection = await shop.connect(standin)
    sale, deliveries = standin.payment(10000, visitor="v-refund")
    await shop.deliver_all(connection, deliveries)

    partial = standin.refund(sale, 0, 3000)
    await shop.deliver_all(connection, partial)
    assert await shop.net() == 7000
    await shop.deliver_all(connection, partial)  # a replayed refund changes nothing
    assert await shop.net() == 7000
    await shop.deliver_all(connection, standin.refund(sale, 3000, 7000))

    payments = await shop.payments()
    refunds = [p for p in payments if p["kind"] == "refund"]
    assert sorted(p["amount"] for p in refunds) == [-7000, -3000]
    assert {p["visitor_id"] for p in refunds} == {"v-refund"}  # credited to the original's visitor
    assert await shop.net() == 0


# Shopify has no subscriptions: its renewals come through POST /api/v1/payments (tested there).
@pytest.mark.parametrize("standin", sorted(n for n, s in STAND_INS.items() if s.renews), indirect=True)
async def test_a_renewal_inherits_its_first_payments_source(shop: Shop, standin: StandIn) -> None:
    connection = await shop.connect(standin)
    await shop.visit("v-google", utm_source="google", referrer="https://www.google.com/")
    await shop.visit("v-other", utm_source="newsletter")
    await shop.drained()
    await shop.wait_for_sessions(2)
    first, deliveries = standin.payment(2900, visitor="v-google", subscription=True)
    await shop.deliver_all(connection, deliveries)
    _, renewal_deliveries = standin.renewal(first, at=datetime.now(UTC) + timedelta(days=31))
    await shop.deliver_all(connection, renewal_deliveries)

    payments = await shop.payments()
    assert [(p["is_renewal"], p["visitor_id"]) for p in payments] == [(0, "v-google"), (1, "v-google")]
    assert payments[1]["link"] == "subscription"
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    to = (datetime.now(UTC) + timedelta(days=40)).isoformat()
    for model in ("first", "last", "last_non_direct"):
        rows = await shop.attribution(model=model, dimension="utm_source", **{"from": since, "to": to})
        google = rows["google"]
        assert (google["revenue"], google["new_revenue"], google["renewal_revenue"]) == (5800, 2900, 2900)
        assert rows["newsletter"]["revenue"] == 0
        assert None not in rows


# --- event names outside the signature (Shopify's topic, Lemon Squeezy's X-Event-Name header)


@pytest.mark.parametrize("standin", ["shopify"], indirect=True)
async def test_shopify_an_unpaid_order_sent_under_the_orders_paid_topic_is_refused(
    shop: Shop, standin: StandIn
) -> None:
    """The HMAC covers the body only: an orders/create body of an unpaid order, replayed with
    X-Shopify-Topic: orders/paid, must not count as money received."""
    connection = await shop.connect(standin)
    _, [paid] = standin.payment(4200, visitor="v-unpaid")
    order = json.loads(paid.body)
    order["financial_status"] = "pending"
    unpaid = standin.sign(json.dumps(order).encode(), {"X-Shopify-Topic": "orders/paid"})

    response = await shop.deliver(connection, unpaid)

    assert response.status_code == 400, response.text
    assert "topic" in response.json()["detail"].lower()
    assert await shop.stored_rows() == 0


@pytest.mark.parametrize("standin", ["shopify"], indirect=True)
async def test_shopify_a_topic_that_does_not_match_the_signed_body_is_refused(
    shop: Shop, standin: StandIn
) -> None:
    connection = await shop.connect(standin)
    sale, [paid] = standin.payment(3000)
    [refund] = standin.refund(sale, 0, 1000)
    refund_as_order = standin.sign(refund.body, {"X-Shopify-Topic": "orders/paid"})
    order_as_refund = standin.sign(paid.body, {"X-Shopify-Topic": "refunds/create"})

    for delivery in (refund_as_order, order_as_refund):
        response = await shop.deliver(connection, delivery)
        assert response.status_code == 400, response.text
    assert await shop.stored_rows() == 0
    # the genuine deliveries still count
    await shop.deliver_all(connection, [paid, refund])
    assert await shop.net() == 2000


@pytest.mark.parametrize("standin", ["lemonsqueezy"], indirect=True)
async def test_lemonsqueezy_takes_the_event_from_the_signed_body_and_refuses_a_mismatching_header(
    shop: Shop, standin: StandIn
) -> None:
    connection = await shop.connect(standin)
    _, [order] = standin.payment(2500, visitor="v-ls")
    payload = json.loads(order.body)
    # A body without meta.event_name: the unsigned header must not decide what it means.
    del payload["meta"]["event_name"]
    nameless = standin.sign(json.dumps(payload).encode(), {"X-Event-Name": "order_created"})
    mislabelled = Delivery(order.body, {**order.headers, "X-Event-Name": "order_refunded"})

    for delivery in (nameless, mislabelled):
        response = await shop.deliver(connection, delivery)
        assert response.status_code == 400, response.text
    assert await shop.stored_rows() == 0
    assert (await shop.deliver(connection, order)).json()["stored"] == 1


async def test_deliveries_of_one_payment_arriving_at_once_store_it_once_linked(
    shop: Shop, standin: StandIn
) -> None:
    """A provider sends a payment's events (and retries) within milliseconds of each other: handled at
    the same time, they are still one payment, linked to its visitor (the double-count trap)."""
    connection = await shop.connect(standin)
    amounts = [1000 + n for n in range(8)]
    deliveries: list[Delivery] = []
    for n, amount in enumerate(amounts):
        _, events = standin.payment(amount, visitor=f"v-race-{n}", subscription=n % 2 == 0)
        deliveries += [*events, *(standin.resign(d) for d in events)]

    answers = await asyncio.gather(*(shop.deliver(connection, d) for d in deliveries))

    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    payments = [p for p in await shop.payments() if p["kind"] == "payment"]
    assert sorted(p["amount"] for p in payments) == amounts
    assert await shop.net() == sum(amounts)
    assert {p["visitor_id"] for p in payments} == {f"v-race-{n}" for n in range(len(amounts))}

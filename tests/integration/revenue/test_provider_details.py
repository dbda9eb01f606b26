"""Provider details beyond the common cases: Stripe delayed payments, intents named by invoices,
and signatures during secret rotation (several signatures in one header)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from tests.integration.revenue.conftest import Shop
from tests.integration.revenue.standins import Delivery, Polar, Stripe


async def test_stripe_counts_a_delayed_checkout_when_its_payment_succeeds(shop: Shop) -> None:
    stripe = Stripe()
    connection = await shop.connect(stripe)
    _, deliveries = stripe.payment(3300, visitor="v-sepa")
    session = json.loads(deliveries[0].body)["data"]["object"]
    pending = stripe.event("checkout.session.completed", {**session, "payment_status": "unpaid"})
    succeeded = stripe.event("checkout.session.async_payment_succeeded", session)

    await shop.deliver_all(connection, [pending])
    assert await shop.stored_rows() == 0
    await shop.deliver_all(connection, [succeeded])

    assert [(p["amount"], p["visitor_id"]) for p in await shop.payments()] == [(3300, "v-sepa")]


async def test_stripe_invoice_listing_its_payment_intent_is_one_payment_with_it(shop: Shop) -> None:
    stripe = Stripe()
    connection = await shop.connect(stripe)
    sale, deliveries = stripe.payment(2000, visitor="v-inv", subscription=True)
    invoice = json.loads(deliveries[1].body)["data"]["object"]
    invoice["payments"] = {
        "object": "list",
        "data": [
            {"object": "invoice_payment", "payment": {"type": "payment_intent", "payment_intent": "pi_inv1"}}
        ],
    }
    intent = {
        "id": "pi_inv1", "object": "payment_intent", "amount": 2000, "amount_received": 2000,
        "currency": "usd", "customer": sale.customer_id, "created": int(time.time()), "metadata": {},
        "status": "succeeded",
    }  # fmt: skip

    await shop.deliver_all(
        connection, [stripe.event("payment_intent.succeeded", intent), stripe.event("invoice.paid", invoice)]
    )
    await shop.deliver_all(connection, [deliveries[0]])  # the checkout session: same invoice

    [payment] = await shop.payments()
    assert (payment["amount"], payment["visitor_id"], payment["link"]) == (2000, "v-inv", "metadata")
    # a refund naming only the intent finds the payment and its visitor
    charge = {"id": "ch_inv1", "object": "charge", "amount": 2000, "amount_refunded": 2000, "currency": "usd",
              "payment_intent": "pi_inv1", "metadata": {}}  # fmt: skip
    await shop.deliver_all(connection, [stripe.event("charge.refunded", charge)])
    assert await shop.net() == 0
    assert {p["visitor_id"] for p in await shop.payments()} == {"v-inv"}


async def test_stripe_accepts_any_v1_signature_during_secret_rotation(shop: Shop) -> None:
    stripe = Stripe()
    connection = await shop.connect(stripe)
    _, deliveries = stripe.payment(1200)
    body = deliveries[0].body
    t = int(time.time())
    old = hmac.new(b"whsec_previous", f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    new = hmac.new(stripe.secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    header = f"t={t},v1={old},v1={new},v0=deadbeef"

    response = await shop.deliver(connection, Delivery(body, {"Stripe-Signature": header}))

    assert response.status_code == 200, response.text
    assert await shop.stored_rows() == 1


async def test_polar_accepts_one_matching_signature_among_several(shop: Shop) -> None:
    polar = Polar()
    connection = await shop.connect(polar)
    _, deliveries = polar.payment(1500)
    delivery = deliveries[0]
    other = base64.b64encode(b"x" * 32).decode()
    headers = {**delivery.headers, "webhook-signature": f"v1,{other} {delivery.headers['webhook-signature']}"}
    unsigned_scheme = {
        **delivery.headers,
        "webhook-signature": delivery.headers["webhook-signature"].replace("v1,", "v2,"),
    }

    assert (await shop.deliver(connection, Delivery(delivery.body, unsigned_scheme))).status_code == 400
    assert (await shop.deliver(connection, Delivery(delivery.body, headers))).status_code == 200
    assert await shop.stored_rows() == 1


async def test_stripe_refund_of_a_subscription_charge_finds_its_invoice_by_customer(shop: Shop) -> None:
    """Current charges name neither the invoice nor an id the invoice event listed."""
    stripe = Stripe()
    connection = await shop.connect(stripe)
    sale, deliveries = stripe.payment(4000, visitor="v-sub", subscription=True)
    await shop.deliver_all(connection, deliveries)
    _, other_customer = stripe.payment(4000, visitor="v-else", subscription=True)
    await shop.deliver_all(connection, other_customer)
    charge = {"id": "ch_sub1", "object": "charge", "amount": 4000, "amount_refunded": 1000, "currency": "usd",
              "customer": sale.customer_id, "payment_intent": "pi_unlisted", "metadata": {}}  # fmt: skip

    await shop.deliver_all(connection, [stripe.event("charge.refunded", charge)])

    [refund] = [p for p in await shop.payments() if p["kind"] == "refund"]
    assert (refund["amount"], refund["visitor_id"], refund["transaction_id"]) == (-1000, "v-sub", sale.id)

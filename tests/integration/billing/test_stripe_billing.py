"""Hosted mode against the Stripe stand-in: trial at sign-up, Checkout and the Portal created
through the ``stripe`` package, and the billing webhooks (signed, idempotent, order-safe)."""

from __future__ import annotations

import json
import random
from typing import Any

from tests.integration.accounts.conftest import Mailbox, signup
from tests.integration.billing.conftest import Client, now, subscribed_account
from tests.integration.billing.stripe_api import StripeStandIn, event, invoice, sign, signed

DAY = 86400


async def test_sign_up_starts_a_14_day_trial_of_the_first_plan(client: Client) -> None:
    owner = await signup(client)

    response = await owner.get("/api/v1/billing")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "trialing"
    assert body["trial_days_left"] == 14
    assert body["plan"]["name"] == "starter"
    assert body["usage"] == {"events": 0, "allowance": 100, "percent": 0, "sites": 0, "seats": 0}
    assert body["accepting_events"] is True
    assert body["subscribed"] is False
    assert [p["name"] for p in body["plans"]] == ["starter", "growth"]


async def test_checkout_is_created_through_stripe_with_the_plan_price_and_the_account(
    client: Client, stripe_api: StripeStandIn
) -> None:
    account = await subscribed_account(client, stripe_api, plan="growth")

    calls = [(path, params) for path, params, _ in stripe_api.requests]
    assert [path for path, _ in calls] == ["/v1/customers", "/v1/checkout/sessions"]
    customer = calls[0][1]
    assert customer == {"email": account.owner.email, "metadata": {"datafast_user_id": account.owner.id}}
    session = calls[1][1]
    assert session["mode"] == "subscription"
    assert session["customer"] == account.customer
    assert session["client_reference_id"] == account.owner.id
    assert session["line_items"] == {"0": {"price": "price_growth_m", "quantity": "1"}}
    assert session["subscription_data"] == {"metadata": {"datafast_user_id": account.owner.id}}
    assert session["success_url"].endswith("/settings/billing?checkout=done")
    # A second checkout reuses the customer.
    second = await account.checkout("starter")
    assert second["url"].startswith(stripe_api.url + "/c/pay/cs_test_")
    assert [p for p, _, _ in stripe_api.requests].count("/v1/customers") == 1
    assert stripe_api.requests[-1][1]["line_items"]["0"]["price"] == "price_starter_m"


async def test_checkout_of_an_unknown_plan_or_interval_is_a_400_problem(client: Client) -> None:
    owner = await signup(client)
    for body in ({"plan": "platinum"}, {"plan": "growth", "interval": "week"}, {"plan": 3}):
        response = await owner.post("/api/v1/billing/checkout", json=body)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"


async def test_portal_needs_a_customer_then_opens_for_it(client: Client, stripe_api: StripeStandIn) -> None:
    owner = await signup(client)
    before = await owner.post("/api/v1/billing/portal")
    assert before.status_code == 400
    assert before.headers["content-type"] == "application/problem+json"

    account = await subscribed_account(client, stripe_api)
    response = await account.owner.post("/api/v1/billing/portal")

    assert response.status_code == 200, response.text
    assert response.json()["url"].startswith(stripe_api.url + "/p/session/bps_")
    path, params, _ = stripe_api.requests[-1]
    assert path == "/v1/billing_portal/sessions"
    assert params["customer"] == account.customer
    assert params["return_url"].endswith("/settings/billing")


async def test_webhooks_activate_the_plan_then_a_portal_downgrade_lowers_the_limits(
    client: Client, stripe_api: StripeStandIn
) -> None:
    account = await subscribed_account(client, stripe_api, plan="growth")
    t = now()
    period = (t - 60, t - 60 + 30 * DAY)
    completed = event(
        "checkout.session.completed",
        {
            "id": "cs_test_x",
            "object": "checkout.session",
            "mode": "subscription",
            "customer": account.customer,
            "client_reference_id": account.owner.id,
            "subscription": account.subscription,
            "payment_status": "paid",
            "status": "complete",
            "metadata": {"datafast_user_id": account.owner.id},
        },
        t - 59,
    )
    created = account.subscription_event(
        "customer.subscription.created", "price_growth_m", "active", t - 60, period
    )
    paid = event(
        "invoice.paid",
        invoice("in_1", account.customer, account.subscription, "paid", "subscription_create"),
        t - 58,
    )
    for evt in (completed, created, paid):
        response = await account.deliver(evt)
        assert response.status_code == 200, response.text
        assert response.json() == {"received": True, "duplicate": False}

    billing = await account.billing()
    assert (billing["status"], billing["plan"]["name"], billing["subscribed"]) == ("active", "growth", True)
    assert billing["trial_days_left"] is None
    assert billing["period_start"].startswith(_iso(period[0]))
    assert billing["period_end"].startswith(_iso(period[1]))
    for _ in range(3):  # growth allows three sites
        await account.owner.create_site()
    fourth = await account.owner.post("/api/v1/sites", json={"domain": "fourth.example.com"})
    assert fourth.status_code == 402
    assert fourth.json()["limit"] == "sites"

    downgraded = account.subscription_event(
        "customer.subscription.updated", "price_starter_m", "active", t, period
    )
    assert (await account.deliver(downgraded)).status_code == 200

    billing = await account.billing()
    assert billing["plan"]["name"] == "starter"
    assert billing["usage"]["allowance"] == 100
    refused = await account.owner.post("/api/v1/sites", json={"domain": "another.example.com"})
    assert refused.status_code == 402
    assert refused.headers["content-type"] == "application/problem+json"
    assert "allows 1 site" in refused.json()["detail"]


def _iso(epoch: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")


_STATE_KEYS = ("status", "period_start", "period_end", "past_due_since", "accepting_events", "grace_ends_at")


def _state(billing: dict[str, Any]) -> dict[str, Any]:
    return {"plan": billing["plan"]["name"], **{k: billing[k] for k in _STATE_KEYS}}


async def test_shuffled_and_duplicated_subscription_events_leave_the_same_final_state(
    client: Client, stripe_api: StripeStandIn
) -> None:
    t = now() - 3600
    period = (t, t + 30 * DAY)
    finals = []
    for seed in range(4):
        account = await subscribed_account(client, stripe_api)
        events = [
            account.subscription_event(
                "customer.subscription.created", "price_starter_m", "active", t, period
            ),
            account.subscription_event(
                "customer.subscription.updated", "price_growth_m", "active", t + 10, period
            ),
            account.subscription_event(
                "customer.subscription.updated", "price_growth_m", "past_due", t + 20, period
            ),
            account.subscription_event(
                "customer.subscription.deleted", "price_growth_m", "canceled", t + 30, period
            ),
        ]
        deliveries = events * 2
        if seed:  # seed 0: in order, once each then again
            random.Random(seed).shuffle(deliveries)
        duplicates = 0
        for evt in deliveries:
            response = await account.deliver(evt)
            assert response.status_code == 200, response.text
            duplicates += response.json()["duplicate"]
        assert duplicates == 4
        finals.append(_state(await account.billing()))

    expected = {
        "plan": "growth",
        "status": "canceled",
        "period_start": finals[0]["period_start"],
        "period_end": finals[0]["period_end"],
        "past_due_since": None,
        "accepting_events": True,  # canceled at t+30, paid until the period's end (+ grace)
        "grace_ends_at": _iso(period[1] + 7 * DAY) + "Z",
    }
    assert finals[0]["period_start"].startswith(_iso(period[0]))
    assert all(final == expected for final in finals), finals


async def test_a_forged_or_stale_signature_changes_nothing_and_the_genuine_event_still_applies(
    client: Client, stripe_api: StripeStandIn
) -> None:
    account = await subscribed_account(client, stripe_api)
    evt = account.subscription_event("customer.subscription.created", "price_growth_m", "active", now())
    body, headers = signed(evt)
    forged = {**headers, "stripe-signature": sign(body, "whsec_someone_else")}
    stale = {**headers, "stripe-signature": sign(body, at=now() - 600)}
    tampered = json.dumps({**evt, "type": "customer.subscription.deleted"}).encode()

    for content, hdrs in ((body, forged), (body, stale), (tampered, headers), (body, {})):
        response = await client.post("/webhooks/billing/stripe", content=content, headers=hdrs)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
    billing = await account.billing()
    assert (billing["status"], billing["plan"]["name"]) == ("trialing", "starter")

    genuine = await account.deliver(evt)  # the id was not stored by the refused deliveries
    assert genuine.json() == {"received": True, "duplicate": False}
    billing = await account.billing()
    assert (billing["status"], billing["plan"]["name"]) == ("active", "growth")


async def test_a_failed_invoice_makes_the_account_past_due_and_mails_the_owner(
    client: Client, stripe_api: StripeStandIn, mailbox: Mailbox
) -> None:
    account = await subscribed_account(client, stripe_api)
    t = now()
    await account.deliver(
        account.subscription_event("customer.subscription.created", "price_growth_m", "active", t - 100)
    )
    failed = event(
        "invoice.payment_failed", invoice("in_f", account.customer, account.subscription, "open"), t - 50
    )

    first = await account.deliver(failed)
    again = await account.deliver(failed)

    assert first.json()["duplicate"] is False
    assert again.json()["duplicate"] is True
    billing = await account.billing()
    assert billing["status"] == "past_due"
    assert billing["accepting_events"] is True  # within the grace
    assert billing["grace_ends_at"].startswith(_iso(t - 50 + 7 * DAY))
    message = await mailbox.wait_for(account.owner.email, "payment failed")
    assert "/settings/billing" in message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert len([m for m in mailbox.messages if "payment failed" in m["Subject"]]) == 1

    paid = event("invoice.paid", invoice("in_f", account.customer, account.subscription, "paid"), t - 10)
    await account.deliver(paid)
    billing = await account.billing()
    assert (billing["status"], billing["past_due_since"]) == ("active", None)


async def test_billing_events_for_no_known_account_are_acknowledged(client: Client) -> None:
    body, headers = signed(event("invoice.paid", invoice("in_x", "cus_nobody", "sub_nobody", "paid"), now()))
    response = await client.post("/webhooks/billing/stripe", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}

"""Attribution from real traffic (POST /track) and real webhooks: first, last and last non-direct
touch, the lookback window, email linking, unknown sources and the tracker/provider dedupe rule."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.revenue.conftest import Shop
from tests.integration.revenue.standins import Stripe


def _ago(hours: float) -> dict[str, float]:
    """/track fields dating an event ``hours`` back (client time and send time, as the tracker sends)."""
    now = time.time() * 1000
    return {"timestamp": now - hours * 3600_000, "sent_at": now}


async def test_google_visitor_pays_through_stripe_and_a_refund_brings_it_down(shop: Shop) -> None:
    """End to end: a visit with utm_source=google, a Stripe checkout with the visitor id in its
    metadata, the webhook; revenue by source under first and last touch, then a refund."""
    stripe = Stripe()
    connection = await shop.connect(stripe)
    google = {"session_id": "s-google"}  # the tracker's session cookie, the same on both pages
    await shop.visit(
        "v-google", path="/?utm_source=google", referrer="https://www.google.com/", **google, **_ago(1)
    )
    await shop.visit(
        "v-google", path="/pricing", referrer=f"https://{shop.site['domain']}/", **google, **_ago(0.9)
    )
    await shop.visit("v-bing", path="/?utm_source=bing", referrer="https://www.bing.com/", **_ago(1))
    await shop.visit("v-news", path="/?utm_source=newsletter", **_ago(1))
    await shop.drained()
    await shop.wait_for_sessions(3)

    sale, deliveries = stripe.payment(4999, visitor="v-google", session="s-google")
    await shop.deliver_all(connection, deliveries)
    _, other = stripe.payment(1000, visitor="v-news")
    await shop.deliver_all(connection, other)

    for model in ("first", "last"):
        by_utm = await shop.attribution(model=model, dimension="utm_source")
        assert by_utm["google"]["revenue"] == 4999
        assert by_utm["google"]["payments"] == 1
        assert (by_utm["google"]["visitors"], by_utm["google"]["customers"]) == (1, 1)
        assert by_utm["google"]["conversion_rate"] == 1.0
        assert by_utm["google"]["revenue_per_visitor"] == 4999.0
        assert by_utm["google"]["average_order_value"] == 4999.0
        assert by_utm["newsletter"]["revenue"] == 1000
        assert (by_utm["bing"]["revenue"], by_utm["bing"]["visitors"], by_utm["bing"]["conversion_rate"]) == (
            0,
            1,
            0.0,
        )
        by_source = await shop.attribution(model=model, dimension="source")
        assert by_source["Google"]["revenue"] == 4999

    await shop.deliver_all(connection, stripe.refund(sale, 0, 2000))

    for model in ("first", "last", "last_non_direct"):
        google = (await shop.attribution(model=model, dimension="utm_source"))["google"]
        assert (google["revenue"], google["refunds"], google["new_revenue"]) == (2999, 2000, 2999)


async def test_last_non_direct_touch_skips_a_final_direct_visit(shop: Shop) -> None:
    stripe = Stripe()
    connection = await shop.connect(stripe)
    await shop.visit("v-1", path="/?utm_source=twitter", referrer="https://t.co/abc", **_ago(30))
    await shop.visit("v-1", path="/?utm_source=google", referrer="https://www.google.com/", **_ago(20))
    await shop.visit("v-1", path="/", **_ago(1))  # typed the address: direct
    await shop.drained()
    await shop.wait_for_sessions(1)
    await shop.deliver_all(connection, stripe.payment(12000, visitor="v-1")[1])

    first = await shop.attribution(model="first", dimension="utm_source")
    last = await shop.attribution(model="last", dimension="channel")
    last_non_direct = await shop.attribution(model="last_non_direct", dimension="utm_source")

    assert first["twitter"]["revenue"] == 12000
    assert last["direct"]["revenue"] == 12000
    assert last_non_direct["google"]["revenue"] == 12000
    assert last_non_direct["twitter"]["revenue"] == 0


async def test_the_lookback_window_limits_which_visits_count(shop: Shop) -> None:
    stripe = Stripe()
    connection = await shop.connect(stripe)
    await shop.visit("v-old", path="/?utm_source=reddit", referrer="https://www.reddit.com/", **_ago(60))
    await shop.drained()
    await shop.wait_for_sessions(1)
    await shop.deliver_all(connection, stripe.payment(3000, visitor="v-old")[1])

    default = await shop.attribution(model="first", dimension="utm_source")
    one_day = await shop.attribution(model="first", dimension="utm_source", lookback_days=1)

    assert default["reddit"]["revenue"] == 3000
    assert one_day["reddit"]["revenue"] == 0
    assert one_day[None]["revenue"] == 3000  # outside the window: unknown source, still counted


async def test_a_payment_without_metadata_is_linked_by_the_identified_email(shop: Shop) -> None:
    stripe = Stripe()
    connection = await shop.connect(stripe)
    await shop.visit("v-mail", path="/?utm_source=producthunt", **_ago(2))
    await shop.visit(
        "v-mail",
        path="/signup",
        event_type="identify",
        props={"user_id": "u-1", "email": "  Founder@Example.com "},
        **_ago(1.5),
    )
    await shop.drained()
    await shop.wait_for_sessions(1)

    await shop.deliver_all(connection, stripe.payment(2500, email="founder@example.com")[1])
    await shop.deliver_all(connection, stripe.payment(700, email="stranger@example.com")[1])

    payments = {p["amount"]: p for p in await shop.payments()}
    assert (payments[2500]["visitor_id"], payments[2500]["link"]) == ("v-mail", "email")
    assert (payments[700]["visitor_id"], payments[700]["link"]) == ("", "none")
    rows = await shop.attribution(model="first", dimension="utm_source")
    assert rows["producthunt"]["revenue"] == 2500
    assert rows[None]["revenue"] == 700  # unattributed, kept and counted
    stored = await shop.adapters.event_store.query(
        "SELECT count() FROM events WHERE website_id = {s:UUID} AND has(mapValues(props), {e:String})",
        parameters={"s": shop.id, "e": "  Founder@Example.com "},
    )
    assert stored.result_rows[0][0] == 0  # only the hash was stored


async def test_an_identify_that_arrives_after_the_payment_still_links_it(shop: Shop) -> None:
    """The webhook came first (or the identify was queued offline): the link is made when the
    identify is processed, and attribution follows it."""
    stripe = Stripe()
    connection = await shop.connect(stripe)
    await shop.visit("v-late", path="/?utm_source=producthunt", **_ago(2))
    await shop.drained()
    await shop.wait_for_sessions(1)
    await shop.deliver_all(connection, stripe.payment(4200, email="late@example.com")[1])
    await shop.deliver_all(connection, stripe.payment(900, email="nobody@example.com")[1])
    assert {p["amount"]: p["link"] for p in await shop.payments()} == {4200: "none", 900: "none"}

    await shop.visit(
        "v-late", path="/welcome", event_type="identify", props={"email": "Late@Example.com"}, **_ago(1)
    )
    await shop.drained()

    payments = {p["amount"]: p for p in await shop.payments()}
    assert (payments[4200]["visitor_id"], payments[4200]["link"]) == ("v-late", "email")
    assert (payments[900]["visitor_id"], payments[900]["link"]) == ("", "none")
    rows = await shop.attribution(model="first", dimension="utm_source")
    assert rows["producthunt"]["revenue"] == 4200
    assert rows[None]["revenue"] == 900


async def test_tracker_purchase_and_provider_payment_of_one_sale_count_once(shop: Shop) -> None:
    """The dedupe rule: a tracker event whose props.transaction_id a provider payment carries
    is the same sale; one without a transaction id (or with another) counts on its own."""
    stripe = Stripe()
    connection = await shop.connect(stripe)
    sale, deliveries = stripe.payment(4999, visitor="v-buy")

    def goal(transaction: str | None, revenue: float, hours: float) -> dict[str, Any]:
        props = {"transaction_id": transaction} if transaction else {}
        return {
            "event_type": "goal",
            "goal_name": "purchase",
            "revenue": revenue,
            "props": props,
            **_ago(hours),
        }

    await shop.visit("v-buy", path="/?utm_source=google", **_ago(2))
    await shop.visit("v-buy", path="/thanks", **goal(sale.id, 49.99, 1))  # the same sale as the webhook
    await shop.visit("v-buy", path="/thanks", **goal(None, 5.00, 0.5))  # a tip: tracker only
    await shop.drained()
    await shop.wait_for_sessions(1)
    await shop.deliver_all(connection, deliveries)

    # By default ("auto") tracker revenue stops counting once a provider is connected: the tip is
    # unverified. Counted ("always"), the rule below keeps the sale the webhook reported once.
    rows = await shop.attribution(model="first", dimension="utm_source")
    assert (rows["google"]["revenue"], rows["google"]["payments"]) == (4999, 1)
    response = await shop.owner.patch(f"/api/v1/sites/{shop.id}", json={"count_client_revenue": "always"})
    assert response.status_code == 200, response.text

    rows = await shop.attribution(model="first", dimension="utm_source")

    assert rows["google"]["revenue"] == 4999 + 500
    assert rows["google"]["payments"] == 2


async def test_attribution_refuses_bad_parameters(shop: Shop) -> None:
    base = f"/api/v1/sites/{shop.id}/revenue/attribution"
    for params in (
        {"model": "linear-ish"},
        {"dimension": "password"},
        {"lookback_days": "0"},
        {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
    ):
        response = await shop.owner.get(base, params=params)
        assert response.status_code == 400, (params, response.text)
    since = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    default = await shop.owner.get(base, params={"from": since})
    assert default.status_code == 200
    assert default.json()["model"] == "last_non_direct"  # the Stats API's default too

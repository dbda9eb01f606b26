"""Lemon Squeezy's subscription lifecycle: its webhooks carry the subscription without a price, so
each state is priced by the subscription's latest payment and its billing interval read from
``renews_at`` (README, Subscriptions). Two subscribers over six months — an upgrade (the new price
counts from the payment that charges it), a cancellation that waits for the period's end, a trial
converting to a yearly plan — give the MRR, movements and churn computed here by that rule."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.integration.revenue.conftest import Shop
from tests.integration.revenue.standins import Delivery, LemonSqueezy

MONTHS = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]


def _at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=UTC)


def _deliveries(ls: LemonSqueezy) -> list[Delivery]:
    """In the order Lemon Squeezy sends them: each payment, then the update it causes."""
    google = {"datafast_visitor_id": "v-ls-google"}
    news = {"datafast_visitor_id": "v-ls-news"}
    out: list[Delivery] = []
    # A: 10.00 a month from May 3; upgraded on June 20 (charged 25.00 from July 3); cancelled on
    # August 10, so it ends on September 3.
    a, first = ls.payment(1000, visitor="v-ls-google", subscription=True, at=_at(5, 3))
    a_created = _at(5, 3)
    out += first
    out.append(
        ls.subscription(
            "created", a, "active", _at(5, 3), created=a_created, renews_at=_at(6, 3), custom=google
        )
    )
    out += ls.renewal(a, at=_at(6, 3))[1]
    out.append(
        ls.subscription(
            "updated", a, "active", _at(6, 3), created=a_created, renews_at=_at(7, 3), custom=google
        )
    )
    out.append(
        ls.subscription(
            "updated",
            a,
            "active",
            _at(6, 20),
            created=a_created,
            renews_at=_at(7, 3),
            variant="Business",
            custom=google,
        )
    )
    out += ls.renewal(a, at=_at(7, 3), amount=2500)[1]
    out.append(
        ls.subscription(
            "updated",
            a,
            "active",
            _at(7, 3),
            created=a_created,
            renews_at=_at(8, 3),
            variant="Business",
            custom=google,
        )
    )
    out += ls.renewal(a, at=_at(8, 3), amount=2500)[1]
    cancelled = {"created": a_created, "renews_at": _at(9, 3), "ends_at": _at(9, 3), "variant": "Business"}
    out.append(ls.subscription("cancelled", a, "cancelled", _at(8, 10), **cancelled, custom=google))  # type: ignore[arg-type]
    out.append(ls.subscription("expired", a, "expired", _at(9, 3), **cancelled, custom=google))  # type: ignore[arg-type]
    # B: a 14-day trial from May 10 (a 0.00 order), then 120.00 a year from May 24.
    b, first = ls.payment(0, visitor="v-ls-news", subscription=True, at=_at(5, 10))
    out += first[:1]  # the trial's order; no invoice for nothing
    trial = {"created": _at(5, 10), "trial_ends_at": _at(5, 24), "variant": "Yearly"}
    out.append(
        ls.subscription("created", b, "on_trial", _at(5, 10), renews_at=_at(5, 24), **trial, custom=news)
    )  # type: ignore[arg-type]
    out += ls.renewal(b, at=_at(5, 24), amount=12000)[1]
    year_on = datetime(2027, 5, 24, 12, tzinfo=UTC)
    out.append(ls.subscription("updated", b, "active", _at(5, 24), renews_at=year_on, **trial, custom=news))  # type: ignore[arg-type]
    return out


# Month-end MRR by the rule: A 1000 (May, June: the upgrade is charged in July), 2500 (July,
# August: cancelled but running), 0 from September; B 12000 / 12 = 1000 from its first charge.
MRR = {"2026-05": 2000, "2026-06": 2000, "2026-07": 3500, "2026-08": 3500, "2026-09": 1000, "2026-10": 1000}
MOVES: dict[str, dict[str, Any]] = {
    "2026-05": {"new_mrr": 2000, "new_subscribers": 2, "trials": 1, "trial_conversions": 1},
    "2026-07": {"expansion_mrr": 1500},
    "2026-09": {"churned_mrr": 2500, "churned_subscribers": 1, "churn_rate": 0.5},
}


async def test_lemon_squeezy_subscriptions_are_priced_by_their_payments(shop: Shop) -> None:
    for visitor, source in (("v-ls-google", "google"), ("v-ls-news", "newsletter")):
        await shop.visit(visitor, path=f"/?utm_source={source}")
    await shop.drained()
    await shop.wait_for_sessions(2)
    ls = LemonSqueezy()
    connection = await shop.connect(ls)
    for delivery in _deliveries(ls):
        response = await shop.deliver(connection, delivery)
        assert response.status_code == 200, response.text

    response = await shop.owner.get(
        f"/api/v1/sites/{shop.id}/subscriptions",
        params={"from": MONTHS[0], "to": MONTHS[-1], "by": "utm_source"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    months = {m["month"]: m for m in report["months"]}
    assert {month: m["mrr"] for month, m in months.items()} == MRR
    for month, moves in MOVES.items():
        for key, value in moves.items():
            assert months[month][key] == value, (month, key)
    assert sum(m["expansion_mrr"] + m["contraction_mrr"] for m in months.values()) == 1500
    by_source = {g["value"]: {m["month"]: m["mrr"] for m in g["months"]} for g in report["breakdown"]}
    assert by_source["google"] == {
        "2026-05": 1000,
        "2026-06": 1000,
        "2026-07": 2500,
        "2026-08": 2500,
        "2026-09": 0,
        "2026-10": 0,
    }
    assert by_source["newsletter"] == dict.fromkeys(MONTHS, 1000)

    states = await shop.adapters.event_store.query(
        "SELECT subscription_id, interval, interval_count, plan FROM subscription_states FINAL"
        " WHERE website_id = {s:UUID} AND amount > 0 ORDER BY state_at DESC LIMIT 1 BY subscription_id",
        parameters={"s": shop.id},
    )
    assert sorted((i, n, p) for _, i, n, p in states.result_rows) == [
        ("month", 1, "Pro / Business"),
        ("year", 1, "Pro / Yearly"),
    ]

"""Subscriptions from the providers' lifecycle webhooks, and MRR, churn and LTV by acquisition source.

A generated six-month history (sign-ups with and without trials, upgrades, downgrades, pauses and
resumptions, cancellations, yearly plans, renewals and refunds) for customers from three sources
goes through each provider's stand-in as that provider sends it; subscription events arrive
shuffled and some twice. The truth is computed here from the generated plan (what each
subscription costs a month at every instant, what each customer paid), independently of the
app, and compared month by month with the Subscriptions API.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.revenue.conftest import Shop
from tests.integration.revenue.standins import Delivery, LemonSqueezy, Paddle, Polar, Sale, Stripe


class LemonSqueezyLives(LemonSqueezy):
    """Lemon Squeezy with the generator's subscription call. Its Subscription object has no price:
    DataFast prices each state by the subscription's latest payment, so a plan change counts from
    the payment at the new price (the next renewal), and Lemon Squeezy sends
    ``subscription_updated`` with each renewal (``renews_at`` moves)."""

    STATUS = {"trialing": "on_trial", "canceled": "expired"}

    def subscription(  # type: ignore[override]
        self,
        kind: str,
        sale: Sale,
        status: str,
        amount: int,
        at: datetime,
        *,
        interval: str = "month",
        metadata: dict[str, str] | None = None,
        started: datetime | None = None,
        trial: tuple[datetime, datetime] | None = None,
        renews_at: datetime | None = None,
        ended_at: datetime | None = None,
        canceled_at: datetime | None = None,
    ) -> Delivery:
        del amount, canceled_at  # not in Lemon Squeezy's object
        return super().subscription(
            kind,
            sale,
            self.STATUS.get(status, status),
            at,
            created=started or at,
            renews_at=renews_at,
            trial_ends_at=trial[1] if trial else None,
            ends_at=ended_at,
            variant="Yearly" if interval == "year" else "Monthly",
            custom=metadata,
        )


MONTHS = ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10"]
BOUNDS = [datetime(2026, m, 1, tzinfo=UTC) for m in range(5, 12)]
SOURCES = ["google", "twitter", "newsletter"]
SUB_STAND_INS = {"stripe": Stripe, "polar": Polar, "paddle": Paddle, "lemonsqueezy": LemonSqueezyLives}
KINDS = {
    "stripe": {"activated": "updated", "paused": "paused", "resumed": "resumed", "ended": "deleted"},
    "polar": {"activated": "active", "paused": "updated", "resumed": "active", "ended": "revoked"},
    "paddle": {"activated": "activated", "paused": "paused", "resumed": "resumed", "ended": "canceled"},
    "lemonsqueezy": {"activated": "updated", "paused": "paused", "resumed": "resumed", "ended": "expired"},
}
"""Which event each provider sends for a lifecycle step (``created``/``updated`` are the same everywhere)."""
PAUSED = {"stripe": "paused", "polar": "unpaid", "paddle": "paused", "lemonsqueezy": "paused"}
"""How a subscription stops paying without ending, as each provider says it."""
PRICED_BY_PAYMENTS = {"lemonsqueezy"}
"""Providers whose subscription events carry no price (see ``LemonSqueezyLives``)."""
MOVEMENTS = ("new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr", "reactivation_mrr")


@dataclass
class Customer:
    """What the generator decided for one subscriber: the truth the app must reproduce."""

    visitor: str
    source: str
    changes: list[tuple[datetime, int]] = field(default_factory=list)
    """(when, MRR from then on)."""
    payments: list[tuple[datetime, int]] = field(default_factory=list)
    """Net money: payments positive, refunds negative."""
    trial_start: datetime | None = None

    def mrr_at(self, at: datetime) -> int:
        before = [mrr for when, mrr in self.changes if when < at]
        return before[-1] if before else 0


@dataclass
class History:
    customers: list[Customer] = field(default_factory=list)
    payments: list[tuple[datetime, Delivery]] = field(default_factory=list)
    events: list[Delivery] = field(default_factory=list)


def generate(provider: str, seed: int) -> History:
    """Four subscribers a source, each with a randomly drawn life over May to October 2026."""
    rng = random.Random(seed)
    standin = SUB_STAND_INS[provider]()
    history = History()
    history.standin = standin  # type: ignore[attr-defined]
    for source in SOURCES:
        for n in range(4):
            visitor = f"v-{provider}-{source}-{n}"
            customer = Customer(visitor, source)
            history.customers.append(customer)
            _life(
                rng,
                standin,
                provider,
                customer,
                history,
                trial=n == 1,
                abandons=n == 1 and source == "google",
            )
    return history


def _life(
    rng: random.Random,
    standin: Any,
    provider: str,
    customer: Customer,
    history: History,
    *,
    trial: bool,
    abandons: bool,
) -> None:
    start = datetime(2026, 5, 1, 12, tzinfo=UTC) + timedelta(
        days=rng.randrange(0, 100), hours=rng.randrange(8)
    )
    yearly = rng.random() < 0.2 and not trial
    price = rng.choice([900, 1900, 4900]) * (10 if yearly else 1)
    interval = "year" if yearly else "month"
    first_paid = start + timedelta(days=14) if trial else start
    sale, deliveries = standin.payment(
        price, "USD", visitor=customer.visitor, subscription=True, at=first_paid
    )
    meta = {"datafast_visitor_id": customer.visitor}
    kw: dict[str, Any] = {"interval": interval, "metadata": meta, "started": start}
    priceless = provider in PRICED_BY_PAYMENTS
    renew_every = timedelta(days=365 if yearly else 30)
    renews = [first_paid]
    """The next charge's date, which a price-less provider's states say (``renews_at``)."""

    def state(kind: str, status: str, amount: int, at: datetime, **extra: Any) -> None:
        if priceless:
            extra["renews_at"] = renews[0]
        history.events.append(standin.subscription(kind, sale, status, amount, at, **kw, **extra))

    def mrr(amount: int) -> int:
        return round(amount / 12) if yearly else amount

    if trial:
        trial_window = (start, first_paid)
        kw["trial"] = trial_window
        customer.trial_start = start
        state("created", "trialing", price, start)
        customer.changes.append((start, 0))
        if abandons:  # never pays: ends with the trial
            ended = start + timedelta(days=10)
            state(KINDS[provider]["ended"], "canceled", price, ended, ended_at=ended)
            return
        renews[0] = first_paid + renew_every
        state(KINDS[provider]["activated"], "active", price, first_paid)
    else:
        renews[0] = first_paid + renew_every
        state("created", "active", price, start)
    customer.changes.append((first_paid, mrr(price)))
    history.payments.extend((first_paid, d) for d in deliveries)
    customer.payments.append((first_paid, price))
    if rng.random() < 0.3:  # a partial refund of the first payment a few days later
        refund_at = first_paid + timedelta(days=3)
        history.payments.extend((refund_at, d) for d in standin.refund(sale, 0, price // 3, at=refund_at))
        customer.payments.append((refund_at, -(price // 3)))

    amount, at, paying = price, first_paid, True
    paid = price  # what the latest charge was: a price-less provider's MRR
    end = BOUNDS[-1] - timedelta(days=2)
    next_renewal = first_paid + renew_every
    while True:
        step = at + timedelta(days=rng.randrange(20, 70))
        # A price-less provider's renewal due at the step's very moment is charged first: its
        # states always name a charge still to come.
        while paying and (next_renewal <= step if priceless else next_renewal < step) and next_renewal < end:
            _, renewal_deliveries = standin.renewal(
                Sale(sale.id, amount, "USD", sale.subscription_id, sale.customer_id, dict(sale.extra)),
                at=next_renewal,
            )
            history.payments.extend((next_renewal, d) for d in renewal_deliveries)
            customer.payments.append((next_renewal, amount))
            if priceless:  # the renewal's update: a plan change counts from its first charge
                renews[0] = next_renewal + renew_every
                state("updated", "active", amount, next_renewal)
                if amount != paid:
                    customer.changes.append((next_renewal, mrr(amount)))
                paid = amount
            next_renewal += renew_every
        renews[0] = next_renewal
        if step >= end:
            return
        at = step
        action = rng.choice(["upgrade", "downgrade", "pause", "cancel", "nothing"])
        if not paying:
            action = "resume"
        if action == "upgrade":
            amount = amount * 2
            state("updated", "active", amount, at)
            if not priceless:
                customer.changes.append((at, mrr(amount)))
        elif action == "downgrade" and amount > 900:
            amount = amount // 2
            state("updated", "active", amount, at)
            if not priceless:
                customer.changes.append((at, mrr(amount)))
        elif action == "pause":
            paying = False
            state(KINDS[provider]["paused"], PAUSED[provider], amount, at)
            customer.changes.append((at, 0))
        elif action == "resume":
            paying = True
            next_renewal = renews[0] = at + renew_every
            state(KINDS[provider]["resumed"], "active", amount, at)
            customer.changes.append((at, mrr(paid if priceless else amount)))
        elif action == "cancel":
            state(
                KINDS[provider]["ended"],
                "canceled",
                amount,
                at,
                canceled_at=at,
                ended_at=at,
            )
            customer.changes.append((at, 0))
            return


def truth(customers: list[Customer]) -> list[dict[str, Any]]:
    """The month-by-month figures, straight from the generated plan."""
    out = []
    for index, month in enumerate(MONTHS):
        start, end = BOUNDS[index], BOUNDS[index + 1]
        row: dict[str, Any] = {"month": month, **dict.fromkeys(MOVEMENTS, 0)}
        row.update(mrr=0, active_subscribers=0, churned_subscribers=0, trials=0, trial_conversions=0)
        paying_at_start = revenue = lifetime = ever_paid = 0
        for c in customers:
            a, b = c.mrr_at(start), c.mrr_at(end)
            row["mrr"] += b
            row["active_subscribers"] += b > 0
            paying_at_start += a > 0
            if a == 0 < b:
                paid_before = any(m > 0 for when, m in c.changes if when < start)
                row["reactivation_mrr" if paid_before else "new_mrr"] += b
            elif 0 < a < b:
                row["expansion_mrr"] += b - a
            elif 0 < b < a:
                row["contraction_mrr"] += a - b
            elif a > 0 == b:
                row["churned_mrr"] += a
                row["churned_subscribers"] += 1
            if c.trial_start and start <= c.trial_start < end:
                row["trials"] += 1
                row["trial_conversions"] += any(m > 0 for _, m in c.changes)
            revenue += sum(amount for when, amount in c.payments if start <= when < end)
            lifetime += sum(amount for when, amount in c.payments if when < end)
            ever_paid += any(m > 0 and when < end for when, m in c.changes)
        row["revenue"] = revenue
        row["churn_rate"] = row["churned_subscribers"] / paying_at_start if paying_at_start else None
        row["ltv"] = lifetime / ever_paid if ever_paid else None
        out.append(row)
    return out


def _compare(got: list[dict[str, Any]], want: list[dict[str, Any]], label: str) -> None:
    assert [m["month"] for m in got] == MONTHS, label
    for g, w in zip(got, want, strict=True):
        for key, value in w.items():
            if isinstance(value, float):
                assert g[key] == pytest.approx(value), f"{label} {w['month']} {key}"
            else:
                assert g[key] == value, f"{label} {w['month']} {key}: {g[key]} != {value}"
        assert g["mrr"] == g["mrr_start"] + g["net_new_mrr"], f"{label} {w['month']}: movements add up"


async def _play(shop: Shop, history: History, seed: int) -> None:
    for customer in history.customers:
        await shop.visit(customer.visitor, path=f"/?utm_source={customer.source}")
    await shop.drained()
    await shop.wait_for_sessions(len(history.customers))
    connection = await shop.connect(history.standin)  # type: ignore[attr-defined]
    standin = history.standin  # type: ignore[attr-defined]
    for _, delivery in sorted(history.payments, key=lambda p: p[0]):
        await shop.deliver_all(connection, [standin.resign(delivery)])  # signed when sent
    events = list(history.events)
    rng = random.Random(seed)
    events += rng.sample(events, len(events) // 4)  # redeliveries
    rng.shuffle(events)  # Stripe and Polar do not promise order
    for delivery in events:
        response = await shop.deliver(connection, history.standin.resign(delivery))  # type: ignore[attr-defined]
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("provider", sorted(SUB_STAND_INS))
async def test_mrr_movements_churn_and_ltv_by_source_equal_the_generated_truth(
    shop: Shop, provider: str
) -> None:
    seed = 15 + len(provider)
    history = generate(provider, seed)
    yearly = b'"Yearly"' if provider in PRICED_BY_PAYMENTS else b'"year"'
    assert any(yearly in d.body for d in history.events), "a yearly plan is normalised to months"
    assert any(amount < 0 for c in history.customers for _, amount in c.payments), "refunds are in the LTV"
    await _play(shop, history, seed)

    response = await shop.owner.get(
        f"/api/v1/sites/{shop.id}/subscriptions",
        params={"from": MONTHS[0], "to": MONTHS[-1], "by": "utm_source"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    want_total = truth(history.customers)
    _compare(report["months"], want_total, "all")
    # the generated history exercises every movement
    for key in (*MOVEMENTS, "churned_subscribers", "trials", "trial_conversions"):
        assert sum(m[key] for m in want_total) > 0, key

    groups = {g["value"]: g for g in report["breakdown"]}
    assert set(groups) == set(SOURCES)
    for source in SOURCES:
        want = truth([c for c in history.customers if c.source == source])
        _compare(groups[source]["months"], want, source)


async def test_subscription_states_converge_whatever_the_order(shop: Shop) -> None:
    """Created → upgraded → canceled, delivered backwards and twice: the same ending state."""
    standin = Stripe()
    connection = await shop.connect(standin)
    sale, deliveries = standin.payment(2000, "USD", visitor="v-order", subscription=True, at=BOUNDS[0])
    await shop.deliver_all(connection, deliveries)
    t = [BOUNDS[0] + timedelta(days=d) for d in (0, 10, 40)]
    events = [
        standin.subscription("created", sale, "active", 2000, t[0]),
        standin.subscription("updated", sale, "active", 5000, t[1]),
        standin.subscription("deleted", sale, "canceled", 5000, t[2], canceled_at=t[2], ended_at=t[2]),
    ]
    for delivery in [*reversed(events), *events]:
        response = await shop.deliver(connection, standin.resign(delivery))
        assert response.status_code == 200, response.text

    response = await shop.owner.get(
        f"/api/v1/sites/{shop.id}/subscriptions", params={"from": "2026-05", "to": "2026-06"}
    )
    may, june = response.json()["months"]
    assert (may["mrr"], may["new_mrr"], may["active_subscribers"]) == (5000, 5000, 1)
    assert (june["mrr"], june["churned_mrr"], june["churn_rate"]) == (0, 5000, 1.0)
    rows = await shop.adapters.event_store.query(
        "SELECT count() FROM subscription_states FINAL WHERE website_id = {s:UUID}", parameters={"s": shop.id}
    )
    assert rows.result_rows[0][0] == 3


async def test_bad_subscription_report_parameters_are_400(shop: Shop) -> None:
    url = f"/api/v1/sites/{shop.id}/subscriptions"
    for params in (
        {"from": "2026-13"},
        {"by": "password"},
        {"model": "linear"},
        {"lookback_days": "0"},
        {"from": "2026-06", "to": "2026-05"},
        {"from": "1999-01"},
        {"to": "9999-12"},
    ):
        response = await shop.owner.get(url, params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_acquisition_follows_the_chosen_attribution_model(shop: Shop) -> None:
    """Google brought the visitor, a newsletter brought them back, they typed the address to pay:
    first touch → google, last non-direct → newsletter, last → the direct visit (no utm_source)."""
    now = time.time() * 1000
    for hours, path in ((5, "/?utm_source=google"), (2, "/?utm_source=newsletter"), (0.5, "/pricing")):
        await shop.visit("v-path", path=path, timestamp=now - hours * 3600_000, sent_at=now)
    await shop.drained()
    await shop.wait_for_sessions(1)
    standin = Stripe()
    connection = await shop.connect(standin)
    sale, deliveries = standin.payment(3000, "USD", visitor="v-path", subscription=True)
    await shop.deliver_all(connection, deliveries)
    created = standin.subscription("created", sale, "active", 3000, datetime.now(UTC))
    await shop.deliver(connection, created)
    month = datetime.now(UTC).strftime("%Y-%m")

    credited = {}
    for model in ("first_touch", "first", "last_non_direct", "last"):
        response = await shop.owner.get(
            f"/api/v1/sites/{shop.id}/subscriptions",
            params={"from": month, "to": month, "by": "utm_source", "model": model},
        )
        assert response.status_code == 200, response.text
        [group] = response.json()["breakdown"]
        assert group["months"][0]["mrr"] == 3000
        credited[model] = group["value"]
    assert credited == {
        "first_touch": "google",
        "first": "google",
        "last_non_direct": "newsletter",
        "last": "",
    }

"""Money received reaches the Stats API: totals, daily series, breakdowns and filters count
provider payments (net of refunds, renewals apart) plus the tracker revenue no payment carries,
and every breakdown by a visit dimension equals the attribution report for the same model.

The expected numbers are computed here in Python from what the test sends (visits through
/track, signed Stripe webhooks), with the rules written out: the double-count rule, the
attribution models, the lookback window, buckets in the site's timezone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.integration.revenue.conftest import Shop
from tests.integration.revenue.standins import Stripe

TIMEZONE = "America/Los_Angeles"
MODELS = ("first", "last", "last_non_direct")
NOW = datetime.now(UTC)


def _at(hours: float) -> datetime:
    """``hours`` before the test's start, to the millisecond (what /track stores)."""
    moment = NOW - timedelta(hours=hours)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _whole(hours: float) -> datetime:
    """``hours`` before the start, in whole seconds (provider timestamps)."""
    return (NOW - timedelta(hours=hours)).replace(microsecond=0)


@dataclass
class Visit:
    visitor: str
    session: str
    started_at: datetime
    utm_source: str  # "" for a direct visit
    source: str
    pages: list[str] = field(default_factory=list)
    goals: list[str] = field(default_factory=list)

    @property
    def direct(self) -> bool:
        return not self.utm_source


@dataclass
class Money:
    amount: int
    at: datetime
    anchor: datetime
    visitor: str = ""
    kind: str = "payment"
    renewal: bool = False


class Truth:
    """The metrics, computed from the visits and the money the test sent."""

    def __init__(self, visits: list[Visit], money: list[Money], visitors_seen: set[str]) -> None:
        self.visits, self.money, self.visitors_seen = visits, money, visitors_seen

    def credited(self, item: Money, model: str, lookback: timedelta = timedelta(days=30)) -> Visit | None:
        touches = sorted(
            (
                v
                for v in self.visits
                if v.visitor == item.visitor
                and item.anchor - lookback <= v.started_at <= item.anchor + timedelta(seconds=60)
            ),
            key=lambda v: v.started_at,
        )
        if not item.visitor or not touches:
            return None
        if model == "first":
            return touches[0]
        if model == "last":
            return touches[-1]
        not_direct = [v for v in touches if not v.direct]
        return (not_direct or touches)[-1]

    @staticmethod
    def summary(items: list[Money], visitors: int) -> dict[str, float]:
        payments = [m for m in items if m.kind == "payment"]
        revenue = sum(m.amount for m in items)
        gross = sum(m.amount for m in payments)
        return {
            "revenue": revenue,
            "new_revenue": sum(m.amount for m in items if not m.renewal),
            "renewal_revenue": sum(m.amount for m in items if m.renewal),
            "refunds": -sum(m.amount for m in items if m.kind == "refund"),
            "purchases": len(payments),
            "average_order_value": gross / len(payments) if payments else 0,
            "revenue_per_visitor": revenue / visitors if visitors else 0,
        }

    def by(self, model: str, key: str) -> dict[str | None, list[Money]]:
        groups: dict[str | None, list[Money]] = {}
        for item in self.money:
            visit = self.credited(item, model)
            groups.setdefault(None if visit is None else getattr(visit, key), []).append(item)
        return groups

    def visitors_by(self, key: str) -> dict[str, int]:
        found: dict[str, set[str]] = {}
        for v in self.visits:
            found.setdefault(getattr(v, key), set()).add(v.visitor)
        return {k: len(s) for k, s in found.items()}


def _ms(at: datetime) -> dict[str, float]:
    return {"timestamp": at.timestamp() * 1000, "sent_at": time.time() * 1000}


async def _query(shop: Shop, **body: Any) -> dict[str, Any]:
    response = await shop.owner.post(f"/api/v1/sites/{shop.id}/query", json={"date_range": "7d", **body})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _approx(actual: dict[str, Any], expected: dict[str, float], context: str) -> None:
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value, rel=1e-9), f"{context}: {name} {actual[name]} != {value}"


@pytest.fixture
async def world(shop: Shop) -> tuple[Shop, Truth, Stripe, dict[str, Any]]:
    """Four visitors over the last three days and the money they (and a stranger) paid."""
    # count_client_revenue=always: these tests check the double-count rule, which only matters when
    # tracker revenue counts next to a connected provider (by default it then does not: see
    # test_client_revenue.py).
    response = await shop.owner.patch(
        f"/api/v1/sites/{shop.id}", json={"timezone": TIMEZONE, "count_client_revenue": "always"}
    )
    assert response.status_code == 200, response.text
    stripe = Stripe()
    connection = await shop.connect(stripe)
    visits = [
        Visit("v-google", "s-g1", _at(50), "google", "Google", ["/", "/pricing"]),
        Visit("v-google", "s-g2", _at(30), "", "", ["/account"]),
        Visit("v-news", "s-n1", _at(20), "newsletter", "newsletter", ["/blog"]),
        Visit("v-news", "s-n2", _at(10), "twitter", "Twitter", ["/"]),
        Visit("v-tip", "s-t1", _at(5), "bing", "Bing", ["/"], ["purchase", "tip"]),
        Visit("v-none", "s-x1", _at(3), "", "", ["/"]),
    ]
    for v in visits:
        first = f"{v.pages[0]}?utm_source={v.utm_source}" if v.utm_source else v.pages[0]
        for i, page in enumerate(v.pages):
            await shop.visit(
                v.visitor,
                path=first if i == 0 else page,
                session_id=v.session,
                **_ms(v.started_at + timedelta(seconds=i * 10)),
            )

    sub, deliveries = stripe.payment(5000, visitor="v-google", subscription=True, at=_whole(29))
    await shop.deliver_all(connection, deliveries)
    one_time, deliveries = stripe.payment(3000, visitor="v-news", at=_whole(9))
    await shop.deliver_all(connection, deliveries)
    tip_sale, deliveries = stripe.payment(2000, visitor="v-tip", at=_whole(4))
    await shop.deliver_all(connection, deliveries)
    _, deliveries = stripe.payment(900, email="stranger@example.com", at=_whole(2))
    await shop.deliver_all(connection, deliveries)

    # The tracker: the same 2000 sale with its payment intent (counted once, as the payment), a
    # 7.50 tip nobody else reports (counted), and revenue in another currency (left out).
    tip = visits[4]
    for goal, revenue, props, currency, hours in (
        ("purchase", 20.00, {"transaction_id": tip_sale.id}, "USD", 4.6),
        ("tip", 7.50, {}, "USD", 4.5),
        ("tip", 10.00, {}, "EUR", 4.4),
    ):
        await shop.visit(
            "v-tip",
            path="/thanks",
            session_id=tip.session,
            event_type="goal",
            goal_name=goal,
            revenue=revenue,
            currency=currency,
            props=props,
            **_ms(_at(hours)),
        )
    await shop.drained()
    await shop.wait_for_sessions(4)
    renewal_at = _whole(0.5)
    await shop.deliver_all(connection, stripe.renewal(sub, at=renewal_at)[1])
    refunded_at = datetime.now(UTC).replace(microsecond=0)
    await shop.deliver_all(connection, stripe.refund(one_time, 0, 1200))

    money = [
        Money(5000, _whole(29), _whole(29), "v-google"),
        Money(5000, renewal_at, _whole(29), "v-google", renewal=True),
        Money(3000, _whole(9), _whole(9), "v-news"),
        Money(-1200, refunded_at, _whole(9), "v-news", kind="refund"),
        Money(2000, _whole(4), _whole(4), "v-tip"),
        Money(750, _at(4.5), _at(4.5), "v-tip"),
        Money(900, _whole(2), _whole(2)),
    ]
    truth = Truth(visits, money, {v.visitor for v in visits})
    return shop, truth, stripe, connection


async def test_totals_count_payments_net_of_refunds_plus_unmatched_tracker_revenue(
    world: tuple[Shop, Truth, Stripe, dict[str, Any]],
) -> None:
    shop, truth, _, _ = world
    response = await shop.owner.get(f"/api/v1/sites/{shop.id}/metrics", params={"period": "7d"})
    assert response.status_code == 200, response.text
    totals = response.json()["totals"]

    expected = Truth.summary(truth.money, len(truth.visitors_seen))
    assert expected["revenue"] == 15450  # the rule, spelled out: 5000+5000+3000-1200+2000+750+900
    _approx(totals, expected, "totals")
    # Visitors with a goal or a payment: v-google and v-news paid, v-tip paid and completed goals.
    assert totals["conversions"] == 3
    assert totals["conversion_rate"] == pytest.approx(3 / 4)


async def test_the_daily_series_buckets_money_by_its_payment_day_in_the_site_timezone(
    world: tuple[Shop, Truth, Stripe, dict[str, Any]],
) -> None:
    shop, truth, _, _ = world
    response = await shop.owner.get(
        f"/api/v1/sites/{shop.id}/timeseries",
        params={"period": "7d", "interval": "day", "metrics": "revenue,purchases,refunds,renewal_revenue"},
    )
    assert response.status_code == 200, response.text
    series = {b["bucket"]: b["metrics"] for b in response.json()["timeseries"]}

    zone = ZoneInfo(TIMEZONE)
    expected: dict[str, list[Money]] = {}
    for item in truth.money:
        expected.setdefault(item.at.astimezone(zone).date().isoformat(), []).append(item)
    assert len(series) == 7
    for day, metrics in series.items():
        want = Truth.summary(expected.get(day, []), 0)
        _approx(
            metrics,
            {k: want[k] for k in ("revenue", "purchases", "refunds", "renewal_revenue")},
            day,
        )
    assert sum(m["revenue"] for m in series.values()) == 15450


@pytest.mark.parametrize("model", MODELS)
async def test_revenue_by_source_equals_the_attribution_report_and_the_truth(
    world: tuple[Shop, Truth, Stripe, dict[str, Any]], model: str
) -> None:
    shop, truth, _, _ = world
    metrics = [
        "visitors",
        "revenue",
        "new_revenue",
        "renewal_revenue",
        "refunds",
        "purchases",
        "average_order_value",
        "revenue_per_visitor",
    ]
    for dimension, key in (("utm_source", "utm_source"), ("source", "source")):
        result = await _query(shop, metrics=metrics, dimensions=[dimension], attribution=model)
        rows = {row["dimensions"][0]: row["metrics"] for row in result["rows"]}
        visitors = truth.visitors_by(key)
        money = truth.by(model, key)

        assert set(rows) == set(visitors) | set(money), (dimension, model)
        for value, row in rows.items():
            seen = visitors.get(value, 0) if value is not None else 0
            want = Truth.summary(money.get(value, []), seen)
            _approx(row, {**want, "visitors": seen}, f"{model} {dimension}={value!r}")

        range_ = result["date_range"]
        report = await shop.attribution(
            model=model, dimension=dimension, **{"from": range_["start_utc"], "to": range_["end_utc"]}
        )
        for value, row in rows.items():
            if row["revenue"] == 0 and row["purchases"] == 0:
                continue
            same = report[value]
            assert (row["revenue"], row["new_revenue"], row["renewal_revenue"], row["refunds"]) == (
                same["revenue"],
                same["new_revenue"],
                same["renewal_revenue"],
                same["refunds"],
            ), (model, value)
            assert (row["purchases"], row["visitors"]) == (same["payments"], same["visitors"])
            assert round(row["average_order_value"], 2) == same["average_order_value"]
            assert round(row["revenue_per_visitor"], 2) == same["revenue_per_visitor"]
        assert sum(r["revenue"] for r in report.values()) == 15450


async def test_the_default_model_is_last_non_direct(
    world: tuple[Shop, Truth, Stripe, dict[str, Any]],
) -> None:
    shop, truth, _, _ = world
    result = await _query(shop, metrics=["revenue"], dimensions=["utm_source"])
    rows = {row["dimensions"][0]: row["metrics"]["revenue"] for row in result["rows"]}
    expected = {k: sum(m.amount for m in v) for k, v in truth.by("last_non_direct", "utm_source").items()}
    assert rows == {**dict.fromkeys(truth.visitors_by("utm_source"), 0), **expected}
    assert rows["google"] == 10000  # the subscription and its renewal: the final direct visit is skipped
    assert rows[None] == 900  # the stranger's payment: no visitor, a row of its own


@pytest.mark.parametrize("model", MODELS)
async def test_a_session_filter_counts_the_money_whose_credited_visit_matches(
    world: tuple[Shop, Truth, Stripe, dict[str, Any]], model: str
) -> None:
    shop, truth, _, _ = world
    for kept in (["google"], ["twitter", "bing"], ["newsletter"]):
        result = await _query(
            shop,
            metrics=["revenue", "purchases", "refunds"],
            filters=[{"dimension": "utm_source", "values": kept}],
            attribution=model,
        )
        money = truth.by(model, "utm_source")
        items = [m for value in kept for m in money.get(value, [])]
        want = Truth.summary(items, 0)
        _approx(
            result["totals"], {k: want[k] for k in ("revenue", "purchases", "refunds")}, f"{model} {kept}"
        )
        # The same filter on a breakdown: only the matching rows, with the same money.
        rows = await _query(
            shop,
            metrics=["revenue"],
            dimensions=["utm_source"],
            filters=[{"dimension": "utm_source", "values": kept}],
            attribution=model,
        )
        found = {r["dimensions"][0]: r["metrics"]["revenue"] for r in rows["rows"] if r["metrics"]["revenue"]}
        assert found == {v: sum(m.amount for m in money[v]) for v in kept if money.get(v)}


async def test_event_dimensions_credit_each_value_of_the_credited_visit(
    world: tuple[Shop, Truth, Stripe, dict[str, Any]],
) -> None:
    """Revenue by page or goal: money credited to a visit counts for every page viewed and every
    goal completed in that visit (so rows may add up to more than the total)."""
    shop, truth, _, _ = world
    for dimension, attribute in (("goal", "goals"), ("page", "pages")):
        result = await _query(shop, metrics=["revenue", "purchases"], dimensions=[dimension])
        rows = {r["dimensions"][0]: r["metrics"] for r in result["rows"]}
        expected: dict[str, list[Money]] = {}
        for item in truth.money:
            visit = truth.credited(item, "last_non_direct")
            values = set(getattr(visit, attribute)) if visit else set()
            if dimension == "page" and visit is not None and visit.goals:
                values.add("/thanks")  # the goals were sent from /thanks
            for value in values:
                expected.setdefault(value, []).append(item)
        for value, items in expected.items():
            want = Truth.summary(items, 0)
            assert (rows[value]["revenue"], rows[value]["purchases"]) == (
                want["revenue"],
                want["purchases"],
            ), (dimension, value)
        assert not {v for v, r in rows.items() if r["revenue"]} - set(expected)
    assert {r["dimensions"][0] for r in result["rows"]} >= {"/", "/pricing", "/blog", "/thanks"}

    goals = await shop.owner.get(f"/api/v1/sites/{shop.id}/goals/conversions", params={"period": "7d"})
    assert goals.status_code == 200, goals.text
    by_goal = {r["dimensions"][0]: r["metrics"] for r in goals.json()["rows"]}
    assert by_goal["tip"]["revenue"] == 2000 + 750
    props = await shop.owner.get(
        f"/api/v1/sites/{shop.id}/breakdown",
        params={"dimension": "prop:transaction_id", "metrics": "visitors,revenue", "period": "7d"},
    )
    assert props.status_code == 200, props.text


async def test_a_webhook_drops_the_cached_results(world: tuple[Shop, Truth, Stripe, dict[str, Any]]) -> None:
    shop, _, stripe, connection = world
    url = f"/api/v1/sites/{shop.id}/metrics"
    before = (await shop.owner.get(url, params={"period": "7d"})).json()["totals"]
    again = (await shop.owner.get(url, params={"period": "7d"})).json()["totals"]
    assert again == before

    await shop.deliver_all(connection, stripe.payment(4321, visitor="v-none")[1])

    after = (await shop.owner.get(url, params={"period": "7d"})).json()["totals"]
    assert after["revenue"] == before["revenue"] + 4321
    assert after["purchases"] == before["purchases"] + 1
    assert after["conversions"] == before["conversions"] + 1  # v-none paid


async def test_bad_attribution_parameters_are_refused_with_a_problem(shop: Shop) -> None:
    for body in ({"attribution": "linear"}, {"lookback_days": 0}):
        response = await shop.owner.post(
            f"/api/v1/sites/{shop.id}/query", json={"metrics": ["revenue"], **body}
        )
        assert response.status_code == 400, response.text
    response = await shop.owner.get(
        f"/api/v1/sites/{shop.id}/breakdown", params={"dimension": "source", "attribution": "nope"}
    )
    assert response.status_code == 400, response.text


async def test_the_previous_period_counts_its_own_money(
    world: tuple[Shop, Truth, Stripe, dict[str, Any]],
) -> None:
    shop, truth, _, _ = world
    zone = ZoneInfo(TIMEZONE)
    today = datetime.now(zone).date()
    by_day: dict[Any, int] = {}
    for item in truth.money:
        day = item.at.astimezone(zone).date()
        by_day[day] = by_day.get(day, 0) + item.amount
    url = f"/api/v1/sites/{shop.id}/metrics"
    response = await shop.owner.get(url, params={"period": "today", "compare": "true", "metrics": "revenue"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["totals"]["revenue"] == by_day.get(today, 0)
    assert answer["comparison"]["totals"]["revenue"] == by_day.get(today - timedelta(days=1), 0)
    series = await shop.owner.get(
        f"/api/v1/sites/{shop.id}/timeseries",
        params={"period": "today", "compare": "true", "interval": "hour", "metrics": "visitors,revenue"},
    )
    assert series.status_code == 200, series.text
    previous = series.json()["comparison"]["timeseries"]
    assert sum(b["metrics"]["revenue"] for b in previous) == by_day.get(today - timedelta(days=1), 0)

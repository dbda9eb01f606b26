"""The Subscriptions view in Chromium: a generated six-month Stripe history goes through the real
server's webhooks, and every figure the page shows (cards, the month-by-month table, the table by
acquisition source) is the Subscriptions API's, formatted as the dashboard formats money."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Account, Errors, Hit, track, unique_host
from tests.integration.revenue.test_subscriptions import MONTHS, generate

pytestmark = pytest.mark.browser

ROWS = {
    "mrr": "money",
    "new_mrr": "money",
    "expansion_mrr": "money",
    "contraction_mrr": "money",
    "churned_mrr": "money",
    "reactivation_mrr": "money",
    "net_new_mrr": "money",
    "active_subscribers": "n",
    "trials": "n",
    "trial_conversions": "n",
    "churn_rate": "pct",
    "arpu": "money",
    "revenue": "money",
    "ltv": "money",
}


def shown(kind: str, value: Any) -> str:
    """How the dashboard writes a value (format.js: en-US dollars, percent to one decimal)."""
    if value is None:
        return "\u2013"  # the en dash format.js shows for no value
    if kind == "money":
        major = (Decimal(str(value)) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        return f"-${-major:,.2f}" if major < 0 else f"${major:,.2f}"
    if kind == "pct":
        tenths = (Decimal(str(value)) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP) / 10
        return f"{tenths.normalize():f}%"
    return f"{value:,}"


def test_the_subscriptions_view_shows_the_apis_numbers(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("subs")
    host = unique_host("sub")
    site_id = owner.add_site(host)
    history = generate("stripe", 21)
    track(datafast, site_id, host, [Hit(c.visitor, f"/?utm_source={c.source}") for c in history.customers])
    made = owner.http.post(
        f"/api/v1/sites/{site_id}/revenue/connections",
        json={"provider": "stripe", "webhook_secret": history.standin.secret},  # type: ignore[attr-defined]
        headers=owner.csrf,
    )
    assert made.status_code == 201, made.text
    url = made.json()["webhook_url"]
    deliveries = [d for _, d in sorted(history.payments, key=lambda p: p[0])]
    events = list(history.events)
    random.Random(3).shuffle(events)
    for delivery in [*deliveries, *events]:
        fresh = history.standin.resign(delivery)  # type: ignore[attr-defined]
        answer = httpx.post(url, content=fresh.body, headers=fresh.headers, timeout=10)
        assert answer.status_code == 200, answer.text
    query = f"from={MONTHS[0]}&to={MONTHS[-1]}&by=utm_source"
    api = owner.http.get(f"/api/v1/sites/{site_id}/subscriptions?{query}")
    assert api.status_code == 200, api.text
    report = api.json()
    assert report["months"][-1]["mrr"] > 0

    context = owner.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}/subscriptions?{query}")
        last = report["months"][-1]
        expect(page.get_by_test_id("sub-kpi-mrr").locator("strong")).to_have_text(shown("money", last["mrr"]))
        expect(page.get_by_test_id("sub-kpi-active_subscribers").locator("strong")).to_have_text(
            shown("n", last["active_subscribers"])
        )
        expect(page.get_by_test_id("sub-kpi-churn_rate").locator("strong")).to_have_text(
            shown("pct", last["churn_rate"])
        )
        expect(page.get_by_test_id("sub-kpi-ltv").locator("strong")).to_have_text(shown("money", last["ltv"]))
        table = page.get_by_test_id("sub-months")
        for key, kind in ROWS.items():
            cells = table.locator(f"tr[data-metric='{key}'] td")
            expect(cells).to_have_text([shown(kind, m[key]) for m in report["months"]])
        breakdown = page.get_by_test_id("sub-breakdown")
        assert {g["value"] for g in report["breakdown"]} == {"google", "twitter", "newsletter"}
        for group in report["breakdown"]:
            m = group["months"][-1]
            row = breakdown.locator(f"tr[data-value='{group['value']}'] td")
            expect(row).to_have_text(
                [
                    shown("money", m["mrr"]),
                    shown("n", m["active_subscribers"]),
                    shown("money", m["new_mrr"]),
                    shown("money", m["churned_mrr"]),
                    shown("pct", m["churn_rate"]),
                    shown("money", m["ltv"]),
                ]
            )
        expect(
            page.get_by_role(
                "img", name="Chart of MRR and its movements per month; the table below has the numbers"
            )
        ).to_be_visible()
    finally:
        context.close()

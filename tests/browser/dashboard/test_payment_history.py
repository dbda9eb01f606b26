"""History on connect in Chromium: Settings → Payments, a Stripe connection given a read key
imports its past payments (from a local stand-in of Stripe's list API), the progress bar reaches
100%, and the dashboard's revenue then counts them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Account, Errors, Outbox, shot, unique_host
from tests.integration.revenue.standins import Stripe
from tests.integration.revenue.stripe_api import StripeListAPI

pytestmark = pytest.mark.browser

READ_KEY = "rk_test_" + "browser" * 6


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[StripeListAPI]:
    with StripeListAPI(READ_KEY) as api:
        yield api


@pytest.fixture(scope="module")
def datafast_extra_env(datafast_extra_env: dict[str, str], stripe_api: StripeListAPI) -> dict[str, str]:
    return {**datafast_extra_env, "STRIPE_API_BASE": stripe_api.url}


def test_a_stripe_connection_imports_its_history_with_a_progress_bar(
    browser: Browser,
    datafast: DataFast,
    sign_up: Callable[..., Account],
    errors: Errors,
    stripe_api: StripeListAPI,
    outbox: Outbox,
) -> None:
    owner = sign_up("history")
    site_id = owner.add_site(unique_host("hst"))
    standin = Stripe()
    now = datetime.now(UTC)
    amounts = [1500 + 100 * n for n in range(12)]
    for n, amount in enumerate(amounts):
        _, deliveries = standin.payment(amount, visitor=f"v{n}", at=now - timedelta(days=2 * n + 1))
        stripe_api.add(deliveries)
    connected = owner.http.post(
        f"/api/v1/sites/{site_id}/revenue/connections",
        json={"provider": "stripe", "webhook_secret": standin.secret},
        headers=owner.csrf,
    )
    assert connected.status_code == 201, connected.text

    context = owner.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}/settings?tab=payments")
        page.get_by_label(re.compile("^Restricted read key")).fill(READ_KEY)
        page.get_by_label("Days").fill("30")
        page.get_by_role("button", name="Import history").click()
        expect(page.get_by_test_id("history-status")).to_have_text("done", timeout=30_000)
        expect(page.get_by_test_id("history-progress")).to_have_attribute("aria-valuenow", "100")
        expect(page.get_by_test_id("history")).to_contain_text(f"{len(amounts)} payments")
        shot(page, "settings-payments-history-desktop-light")

        page.goto(f"{datafast.url}/sites/{site_id}?period=30d")
        revenue = f"${sum(amounts) / 100:,.2f}"
        expect(page.get_by_test_id("kpi-revenue")).to_contain_text(revenue)
    finally:
        context.close()

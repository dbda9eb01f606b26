"""Hosted mode in Chromium against the Stripe stand-in: sign up → trial → upgrade through Checkout
→ webhook → plan active → usage bar moves as events arrive → portal downgrade → webhook → limits
change; a failed invoice → past-due mail → past grace → 402 at /track."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import RESEND_KEY, Account, Outbox
from tests.helpers import CHROME_MAC
from tests.integration.billing.stripe_api import (
    PLANS,
    SECRET_KEY,
    WEBHOOK_SECRET,
    StripeStandIn,
    event,
    invoice,
    signed,
    subscription,
)

pytestmark = pytest.mark.browser
DAY = 86400


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[StripeStandIn]:
    with StripeStandIn() as standin:
        yield standin


@pytest.fixture(scope="module")
def datafast_extra_env(outbox: Outbox, stripe_api: StripeStandIn) -> dict[str, str]:
    return {
        "RESEND_API_KEY": RESEND_KEY,
        "RESEND_API_URL": outbox.url,
        "MAIL_FROM": "DataFast <noreply@datafast.test>",
        "SIGNUP_LIMIT_PER_IP": "10000",
        "SIGNUP_LIMIT_PER_DOMAIN": "10000",
        "BILLING": "stripe",
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe_api.url,
        "BILLING_PLANS": json.dumps(PLANS),
    }


def _deliver(datafast: DataFast, evt: dict[str, Any]) -> None:
    """Stripe's side: a signed event to DataFast's billing webhook."""
    body, headers = signed(evt)
    answer = httpx.post(datafast.url + "/webhooks/billing/stripe", content=body, headers=headers, timeout=15)
    assert answer.status_code == 200, answer.text


def _usage_shows(page: Page, text: str, timeout: float = 20) -> None:
    """Reload the billing page until the usage line reads ``text`` (events land within a second)."""
    deadline = time.monotonic() + timeout
    while True:
        page.reload()
        usage = page.get_by_test_id("usage-text")
        expect(usage).to_be_visible()
        if text in usage.inner_text() or time.monotonic() > deadline:
            break
    expect(usage).to_contain_text(text)


def test_trial_checkout_usage_portal_downgrade_and_402_after_a_failed_invoice(
    datafast: DataFast,
    browser: Browser,
    sign_up: Callable[..., Account],
    stripe_api: StripeStandIn,
    outbox: Outbox,
) -> None:
    account = sign_up("billing")
    domain = f"b{uuid.uuid4().hex[:8]}.test"
    site_id = account.add_site(domain)
    user_id = account.http.get("/api/v1/auth/me").json()["user"]["id"]
    context = account.context(browser)
    page = context.new_page()

    # Trial, shown from the nav link.
    page.goto(datafast.url + "/sites")
    page.get_by_role("link", name="Billing").click()
    expect(page.get_by_role("heading", name="Billing")).to_be_visible()
    expect(page.get_by_test_id("plan-name")).to_have_text("starter")
    expect(page.get_by_test_id("trial-left")).to_have_text("14 days left in your trial.")
    expect(page.get_by_test_id("usage-text")).to_contain_text("0 of 100 events (0%)")

    # Upgrade through Checkout: the browser goes to Stripe's page; Stripe then sends the webhooks.
    page.get_by_role("button", name="Choose growth").click()
    page.wait_for_url(stripe_api.url + "/c/pay/**")
    session_id = page.url.rsplit("/", 1)[1]
    session = stripe_api.sessions[session_id]
    assert session["line_items_prices"] == ["price_growth_m"]
    customer, sub_id = session["customer"], f"sub_{uuid.uuid4().hex[:12]}"
    t = int(time.time()) - 10 * DAY  # the subscription began ten days ago
    period = (t, t + 30 * DAY)
    completed = {**session, "status": "complete", "payment_status": "paid", "subscription": sub_id}
    _deliver(datafast, event("checkout.session.completed", completed, t))
    active = subscription(sub_id, customer, "price_growth_m", "active", *period, user_id)
    _deliver(datafast, event("customer.subscription.created", active, t))
    _deliver(
        datafast, event("invoice.paid", invoice("in_1", customer, sub_id, "paid", "subscription_create"), t)
    )
    page.goto(session["success_url"])
    expect(page.get_by_test_id("plan-name")).to_have_text("growth")
    expect(page.get_by_test_id("plan-status")).to_have_text("active")
    expect(page.get_by_test_id("trial-left")).to_have_count(0)

    # The usage bar moves as events arrive.
    events = [
        {"website_id": site_id, "page_url": f"https://{domain}/p{i}", "visitor_id": f"v{i}"}
        for i in range(30)
    ]
    sent = httpx.post(datafast.url + "/track", json=events, headers={"user-agent": CHROME_MAC}, timeout=15)
    assert sent.status_code == 202, sent.text
    _usage_shows(page, "30 of 10,000 events (0%)")
    assert page.get_by_role("progressbar", name="Events this period").get_attribute("aria-valuenow") == "30"

    # Downgrade in the Customer Portal: Stripe sends the subscription's update.
    page.get_by_role("button", name="Manage billing").click()
    page.wait_for_url(stripe_api.url + "/p/session/**")
    starter = subscription(sub_id, customer, "price_starter_m", "active", *period, user_id)
    _deliver(datafast, event("customer.subscription.updated", starter, t + DAY))
    page.goto(datafast.url + "/settings/billing")
    expect(page.get_by_test_id("plan-name")).to_have_text("starter")
    expect(page.get_by_test_id("usage-text")).to_contain_text("30 of 100 events (30%)")
    second = account.http.post("/api/v1/sites", json={"domain": "second.test"}, headers=account.csrf)
    assert second.status_code == 402
    assert "allows 1 site" in second.json()["detail"]

    # A failed invoice eight days ago: past due, mailed, past the seven-day grace → 402 at /track.
    _deliver(
        datafast, event("invoice.payment_failed", invoice("in_2", customer, sub_id, "open"), t + 2 * DAY)
    )
    mail = outbox.wait_for(account.email, "payment failed")
    assert "/settings/billing" in mail.text
    refused = httpx.post(
        datafast.url + "/track", json=events[0], headers={"user-agent": CHROME_MAC}, timeout=15
    )
    assert refused.status_code == 402
    assert refused.headers["content-type"] == "application/problem+json"
    page.reload()
    expect(page.get_by_test_id("plan-status")).to_have_text("past due")
    expect(page.get_by_test_id("billing-notice")).to_contain_text("unpaid")
    context.close()

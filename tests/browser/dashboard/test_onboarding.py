"""The first-run checklist in Chromium: a new site's dashboard lists the four steps, each ticked
as what it asks for is really stored (a pageview, a goal, a payment connection, a payment), and
the checklist goes away once all are done."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Account, Errors, Hit, shot, track, unique_host

pytestmark = pytest.mark.browser

STEPS = ("snippet", "event", "payments", "payment")


def test_the_checklist_ticks_each_step_from_what_is_stored(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("onboarding")
    host = unique_host("onb")
    site_id = owner.add_site(host)
    context = owner.context(browser)
    try:
        page = errors.watch(context.new_page())

        def expect_done(*done: str) -> None:
            page.goto(f"{datafast.url}/sites/{site_id}")
            checklist = page.get_by_test_id("onboarding")
            expect(checklist).to_contain_text(f"{len(done)} of 4 done")
            for step in STEPS:
                expect(page.get_by_test_id(f"onboarding-{step}")).to_have_attribute(
                    "data-done", "true" if step in done else "false"
                )

        expect_done()
        expect(page.get_by_role("link", name="Get the snippet")).to_have_attribute(
            "href", f"/sites/{site_id}/setup"
        )
        shot(page, "onboarding-desktop-light")
        track(datafast, site_id, host, [Hit("first", "/")])
        expect_done("snippet")
        track(datafast, site_id, host, [Hit("first", "/signup", event_type="goal", goal_name="signup")])
        expect_done("snippet", "event")
        connected = owner.http.post(
            f"/api/v1/sites/{site_id}/revenue/connections",
            json={"provider": "stripe", "webhook_secret": "whsec_" + "a1b2c3d4" * 5},
            headers=owner.csrf,
        )
        assert connected.status_code == 201, connected.text
        expect_done("snippet", "event", "payments")
        key = owner.http.post("/api/v1/api-keys", json={"name": "server"}, headers=owner.csrf).json()["key"]
        paid = owner.http.post(
            "/api/v1/payments",
            json={"website_id": site_id, "amount": "9.00", "currency": "USD", "transaction_id": "first"},
            headers={"authorization": f"Bearer {key}"},
        )
        assert paid.status_code == 201, paid.text

        page.goto(f"{datafast.url}/sites/{site_id}")
        expect(page.get_by_test_id("panel-sources")).to_be_visible()
        expect(page.get_by_test_id("onboarding")).to_have_count(0)
        answer = owner.http.get(f"/api/v1/sites/{site_id}/onboarding").json()
        assert answer["complete"] is True
        assert [s["key"] for s in answer["steps"]] == list(STEPS)
    finally:
        context.close()

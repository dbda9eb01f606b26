"""Settings in Chromium: API keys (shown once, working with the Stats API, revoked for good) and
goals (a page-path goal and an event goal, counted in the dashboard's goals panel).

Expected numbers come from the hits the test sends (``Hit``), not from the server.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Account, Errors, Hit, shot, shots, track, unique_host

pytestmark = pytest.mark.browser


def percent(fraction: float) -> str:
    return f"{round(fraction * 1000) / 10:g}%"


def test_an_api_key_is_shown_once_reads_the_stats_of_its_site_and_stops_when_revoked(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("keys")
    host = unique_host("key")
    site_id = owner.add_site(host)
    other_site = owner.add_site(unique_host("other"))
    hits = [Hit("va", "/"), Hit("va", "/pricing"), Hit("vb", "/")]
    track(datafast, site_id, host, hits)

    context = owner.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}/settings")
        page.get_by_role("tab", name="API keys").click()
        expect(page).to_have_url(re.compile(r"\?tab=keys$"))
        page.get_by_label("New read-only key for this site").fill("Reporting")
        page.get_by_role("button", name="Create key").click()
        secret = page.get_by_test_id("new-key")
        expect(secret).to_have_text(re.compile(r"^dfk_\S{20,}$"))
        key = secret.inner_text()
        expect(page.get_by_role("status")).to_contain_text("it is shown only once")
        shot(page, "settings-keys-new-desktop-light")

        api = f"{datafast.url}/api/v1/sites/{site_id}"
        bearer = {"authorization": f"Bearer {key}"}
        answer = httpx.get(
            f"{api}/metrics?period=today&metrics=visitors,pageviews", headers=bearer, timeout=10
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["totals"] == {
            "visitors": len({h.visitor for h in hits}),
            "pageviews": len(hits),
        }
        # Scoped to this site and read-only.
        scoped = httpx.get(f"{datafast.url}/api/v1/sites/{other_site}/metrics", headers=bearer, timeout=10)
        assert scoped.status_code == 404
        write = httpx.patch(api, json={"name": "renamed"}, headers=bearer, timeout=10)
        assert write.status_code == 403

        # Reloaded, the page lists the key by its prefix and never shows the secret again.
        page.reload()
        expect(page.get_by_test_id("new-key")).to_have_count(0)
        row = page.get_by_role("listitem").filter(has_text="Reporting")
        expect(row).to_contain_text("read-only")
        prefix = row.locator("code").inner_text().removesuffix("…")
        assert key.startswith(prefix)
        assert len(prefix) < len(key)
        expect(page.locator("body")).not_to_contain_text(key)

        page.get_by_role("button", name="Revoke key Reporting").click()
        expect(page.get_by_role("listitem").filter(has_text="Reporting")).to_have_count(0)
        revoked = httpx.get(f"{api}/metrics?period=today", headers=bearer, timeout=10)
        assert revoked.status_code == 401, revoked.text
    finally:
        context.close()


def test_goals_defined_in_settings_are_counted_in_the_goals_panel(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("goals")
    host = unique_host("goal")
    site_id = owner.add_site(host)

    context = owner.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}/settings?tab=goals")
        expect(page.get_by_text("No goals yet.")).to_be_visible()
        page.get_by_label("Goal name", exact=True).fill("Pricing")
        page.get_by_label("When").select_option("pageview")
        page.get_by_label("Path (e.g. /thank-you or /blog/*)").fill("/pricing*")
        page.get_by_role("button", name="Add goal").click()
        expect(page.get_by_role("status")).to_have_text("Goal added.")
        page.get_by_label("Goal name", exact=True).fill("Signed up")
        page.get_by_label("When").select_option("event")
        page.get_by_label("Event name (default: the goal name)").fill("signup")
        page.get_by_role("button", name="Add goal").click()
        goals = page.get_by_test_id("goal")
        expect(goals).to_have_count(2)
        expect(goals.nth(0)).to_contain_text("Pricing visits /pricing*")
        expect(goals.nth(1)).to_contain_text("Signed up event signup")
        # A bad path is refused with the reason.
        page.get_by_label("Goal name", exact=True).fill("Broken")
        page.get_by_label("When").select_option("pageview")
        page.get_by_label("Path (e.g. /thank-you or /blog/*)").fill("pricing")
        page.get_by_role("button", name="Add goal").click()
        expect(page.get_by_role("alert")).to_contain_text("needs a path starting with /")
        expect(goals).to_have_count(2)
        shots(
            browser,
            context,
            f"{datafast.url}/sites/{site_id}/settings?tab=goals",
            "settings-goals",
            lambda p: expect(p.get_by_test_id("goal")).to_have_count(2),
            errors,
        )

        # a: reaches pricing and signs up (a custom event); b: an annual plan page; c: about, and a
        # tracker goal nobody defined in settings (it still shows, under its own name).
        hits = [
            Hit("ga", "/pricing"),
            Hit("ga", "/pricing", event_type="signup"),
            Hit("gb", "/pricing/annual"),
            Hit("gb", "/pricing/annual", event_type="goal", goal_name="checkout", revenue=49.99),
            Hit("gc", "/about"),
            Hit("gc", "/about", event_type="goal", goal_name="newsletter"),
        ]
        track(datafast, site_id, host, hits)
        visitors = len({h.visitor for h in hits})
        converted = {
            "Pricing": {
                h.visitor for h in hits if h.event_type == "pageview" and h.path.startswith("/pricing")
            },
            "Signed up": {h.visitor for h in hits if h.event_type == "signup"},
            "newsletter": {h.visitor for h in hits if h.goal_name == "newsletter"},
            "checkout": {h.visitor for h in hits if h.goal_name == "checkout"},
        }

        page.goto(f"{datafast.url}/sites/{site_id}?period=today")
        panel = page.get_by_test_id("panel-goals")
        for name, who in converted.items():
            row = panel.locator(f'tr[data-value="{name}"]')
            expect(row.locator('td[data-metric="conversions"]')).to_have_text(str(len(who)))
            expect(row.locator('td[data-metric="conversion_rate"]')).to_have_text(
                percent(len(who) / visitors)
            )
        expect(panel.get_by_test_id("row")).to_have_count(len(converted))
        paid = sum(h.revenue or 0 for h in hits if h.goal_name == "checkout")
        expect(panel.locator('tr[data-value="checkout"] td[data-metric="revenue"]')).to_have_text(
            f"${paid:,.2f}"
        )
        # Clicking a defined goal filters the dashboard to the visitors who completed it.
        panel.locator('tr[data-value="Pricing"] button').click()
        expect(page.get_by_test_id("filter-chip")).to_contain_text("Pricing")
        expect(page.get_by_test_id("kpi-visitors-value")).to_have_text(str(len(converted["Pricing"])))
        page.get_by_test_id("filter-chip").get_by_role("button").click()
        expect(page.get_by_test_id("filter-chip")).to_have_count(0)
        expect(page.get_by_test_id("kpi-visitors-value")).to_have_text(str(visitors))
        shots(
            browser,
            context,
            page.url,
            "dashboard-goals",
            lambda p: expect(p.get_by_test_id("panel-goals").get_by_test_id("row")).to_have_count(
                len(converted)
            ),
            errors,
        )

        # Removing a goal removes its row.
        page.goto(f"{datafast.url}/sites/{site_id}/settings?tab=goals")
        page.get_by_role("button", name="Remove goal Signed up").click()
        expect(page.get_by_test_id("goal")).to_have_count(1)
        page.goto(f"{datafast.url}/sites/{site_id}?period=today")
        expect(panel.get_by_test_id("row")).to_have_count(len(converted) - 1)
        expect(panel.locator('tr[data-value="Signed up"]')).to_have_count(0)
    finally:
        context.close()

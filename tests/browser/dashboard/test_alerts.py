"""Reports and alerts in Chromium: a member picks what they are sent about a site (Settings →
Alerts, and every site at once on the Account page), an admin sets the spike threshold and the
chat webhook; the API answers what the screens show, and a bad webhook gets the server's reason."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Account, Errors, shots, unique_host

pytestmark = pytest.mark.browser

SLACK = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXX"


def test_a_member_picks_reports_and_alerts_and_an_admin_sets_the_sites_alerts(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("alerts")
    site_id = owner.add_site(unique_host("alr"))
    other_id = owner.add_site(unique_host("alr"))
    context = owner.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}/settings")
        page.get_by_role("tab", name="Alerts").click()
        expect(page).to_have_url(re.compile(r"\?tab=alerts$"))
        payments = page.get_by_role("checkbox", name=re.compile("^New payments"))
        expect(payments).not_to_be_checked()
        payments.check()
        page.get_by_role("checkbox", name=re.compile("^Monthly report")).check()

        page.get_by_label(re.compile("^Slack or Discord webhook")).fill("http://169.254.169.254/latest")
        page.get_by_role("button", name="Save alerts").click()
        expect(page.get_by_role("alert")).to_contain_text("alert_webhook_url")
        page.get_by_label(re.compile("^Slack or Discord webhook")).fill(SLACK)
        page.get_by_label(re.compile("^Traffic spike at")).fill("25")
        page.get_by_role("button", name="Save alerts").click()
        expect(page.get_by_role("status")).to_have_text("Alert settings saved.")

        alerts = owner.http.get(f"/api/v1/sites/{site_id}/alerts").json()
        assert alerts == {"alert_webhook_url": SLACK, "spike_threshold": 25}
        prefs = {p["website_id"]: p for p in owner.http.get("/api/v1/account/notifications").json()}
        assert prefs[site_id] | {"domain": ""} == {
            "website_id": site_id,
            "domain": "",
            "weekly_report": False,
            "monthly_report": True,
            "payment_alerts": True,
            "spike_alerts": False,
        }
        assert not any(v for k, v in prefs[other_id].items() if k not in ("website_id", "domain"))

        # The Account page lists every site's choices: the same ones, and changes there too.
        page.goto(f"{datafast.url}/account")
        mine = page.get_by_role("group", name=prefs[site_id]["domain"])
        expect(mine.get_by_role("checkbox", name="New payments")).to_be_checked()
        expect(mine.get_by_role("checkbox", name="Weekly report")).not_to_be_checked()
        other = page.get_by_role("group", name=prefs[other_id]["domain"])
        with page.expect_response(lambda r: r.request.method == "PUT" and other_id in r.url) as saved:
            other.get_by_role("checkbox", name="Traffic spikes").check()
        assert saved.value.status == 200
        page.reload()
        expect(other.get_by_role("checkbox", name="Traffic spikes")).to_be_checked()
        spikes = {
            p["website_id"]: p["spike_alerts"] for p in owner.http.get("/api/v1/account/notifications").json()
        }
        assert spikes == {site_id: False, other_id: True}
    finally:
        context.close()

    shots(
        browser,
        owner.context(browser),
        f"{datafast.url}/sites/{site_id}/settings?tab=alerts",
        "settings-alerts",
        lambda page: expect(page.get_by_label(re.compile("^Slack or Discord webhook"))).to_have_value(SLACK),
        errors,
    )

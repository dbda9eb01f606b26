"""Share links in Chromium: a password-protected link opened in a fresh browser (the password form,
a wrong password, the read-only dashboard), then revoked (a plain error page, and the open
dashboard's token stops working).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import DESKTOP, Account, Errors, Hit, shot, shots, track, unique_host
from tests.helpers import CHROME_MAC

pytestmark = pytest.mark.browser

LINK_PASSWORD = "open-sesame-3"


def test_a_password_protected_share_link_shows_the_dashboard_read_only_until_revoked(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("share")
    host = unique_host("share")
    site_id = owner.add_site(host)
    hits = [Hit("sa", "/"), Hit("sa", "/pricing"), Hit("sb", "/blog"), Hit("sc", "/")]
    track(datafast, site_id, host, hits)
    pages = {path: sum(h.path == path for h in hits) for path in {h.path for h in hits}}

    owner_context = owner.context(browser)
    outsider = browser.new_context(user_agent=CHROME_MAC, viewport=DESKTOP)
    try:
        page = errors.watch(owner_context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}/settings")
        page.get_by_role("tab", name="Share links").click()
        page.get_by_label("Name").fill("Board")
        page.get_by_label("Password").fill(LINK_PASSWORD)
        page.get_by_role("button", name="Create share link").click()
        expect(page.get_by_role("status")).to_have_text("Share link created.")
        expect(page.get_by_role("listitem").filter(has_text="Board")).to_contain_text("password")
        share_url = page.get_by_test_id("share-url").get_attribute("href")
        assert share_url is not None
        assert share_url.startswith(f"{datafast.url}/share/")
        shot(page, "settings-share-password-desktop-light")

        # --- a fresh browser: the password form first
        public = errors.watch(outsider.new_page())
        public.goto(share_url + "?period=today")
        expect(public.get_by_role("heading", name=host)).to_be_visible()
        password = public.get_by_label("This dashboard is protected. Password")
        password.fill("not-the-password")
        public.get_by_role("button", name="View dashboard").click()
        expect(public.get_by_role("alert")).to_have_text("That password is not right.")
        expect(public.get_by_test_id("read-only")).to_have_count(0)
        shot(public, "share-password-wrong-desktop-light")
        password.fill(LINK_PASSWORD)
        public.get_by_role("button", name="View dashboard").click()

        # --- the dashboard, read-only: the numbers of the visits, no settings, export or account
        expect(public.get_by_test_id("read-only")).to_have_text("Shared dashboard · read-only")
        expect(public.get_by_test_id("kpi-visitors-value")).to_have_text(str(len({h.visitor for h in hits})))
        expect(public.get_by_test_id("kpi-pageviews-value")).to_have_text(str(len(hits)))
        top = public.get_by_test_id("panel-pages")
        for path, count in pages.items():
            expect(top.locator(f'tr[data-value="{path}"] td[data-metric="pageviews"]')).to_have_text(
                str(count)
            )
        expect(public.get_by_role("link", name="Settings")).to_have_count(0)
        expect(public.get_by_role("button", name="Export CSV")).to_have_count(0)
        expect(public.get_by_role("button", name="Sign out")).to_have_count(0)
        shot(public, "share-dashboard-desktop-light")
        token = public.evaluate(
            """([slug, password]) => fetch('/api/v1/share/' + slug + '/access', {method: 'POST',
                 headers: {'content-type': 'application/json'}, body: JSON.stringify({password})})
                 .then(r => r.json()).then(j => j.access_token)""",
            [share_url.rsplit("/", 1)[1], LINK_PASSWORD],
        )
        metrics = f"{datafast.url}/api/v1/sites/{site_id}/metrics?period=today"
        bearer = {"authorization": f"Bearer {token}"}
        assert httpx.get(metrics, headers=bearer, timeout=10).status_code == 200

        # --- revoked: the token stops at once and the link answers a plain error page
        page.get_by_role("button", name="Revoke share link Board").click()
        expect(page.get_by_test_id("share-url")).to_have_count(0)
        assert httpx.get(metrics, headers=bearer, timeout=10).status_code == 401
        public.get_by_test_id("period").select_option("7d")  # the open dashboard asks again
        expect(public.get_by_role("alert").first).to_contain_text("expired or was revoked")
        public.goto(share_url)
        expect(public.get_by_role("heading", name="Shared dashboard unavailable")).to_be_visible()
        expect(public.get_by_role("alert")).to_have_text("This share link doesn't exist or was revoked.")
        expect(public.get_by_label(re.compile("Password"))).to_have_count(0)
        shot(public, "share-revoked-desktop-light")
    finally:
        owner_context.close()
        outsider.close()


def test_the_shared_dashboard_and_its_password_form_at_phone_and_desktop_width_in_both_themes(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("shots")
    host = unique_host("look")
    site_id = owner.add_site(host)
    track(datafast, site_id, host, [Hit("la", "/"), Hit("lb", "/pricing"), Hit("lb", "/signup")])
    csrf = owner.csrf
    plain = owner.http.post(f"/api/v1/sites/{site_id}/share-links", json={"name": "open"}, headers=csrf)
    locked = owner.http.post(
        f"/api/v1/sites/{site_id}/share-links",
        json={"name": "locked", "password": LINK_PASSWORD},
        headers=csrf,
    )
    assert plain.status_code == locked.status_code == 201
    shots(
        browser,
        None,
        plain.json()["url"] + "?period=today",
        "share-dashboard",
        lambda p: expect(p.get_by_test_id("kpi-visitors-value")).to_have_text("2"),
        errors,
    )
    shots(
        browser,
        None,
        locked.json()["url"],
        "share-password",
        lambda p: expect(p.get_by_role("button", name="View dashboard")).to_be_visible(),
        errors,
    )

"""The shared dashboard's live panel and embeds in Chromium.

- A share link's viewer (a fresh browser, no account) sees the live panel update as visits are
  tracked — the count, the feed, the globe — with nothing about who the visitors are, and the panel
  stops once the link is revoked (the stream re-checks every 0.5 s here).
- A link allows embedding on the origins set in Settings → Share links: a page on such an origin
  shows the dashboard in an iframe (without the app's header, live updates included), a page on
  any other origin gets the frame refused by the browser. The pages are served by the local test
  site: ``localhost`` (allowed, as a developer's page would be) and a ``*.test`` host (not).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Route, expect

from tests.browser.conftest import DataFast, LocalSite, page_html
from tests.browser.dashboard.conftest import (
    DESKTOP,
    SCREENSHOTS,
    Account,
    Errors,
    Outbox,
    mail_env,
    send_visit,
    shot,
    unique_host,
)
from tests.helpers import CHROME_MAC

pytestmark = pytest.mark.browser


def _asks_live_count(url: str) -> bool:
    """The live panel's question: visitors of the last 5 minutes (``/metrics?metrics=visitors``)."""
    parts = urlsplit(url)
    return parts.path.endswith("/metrics") and parse_qs(parts.query).get("metrics") == ["visitors"]


@pytest.fixture(scope="module")
def datafast_extra_env(outbox: Outbox) -> dict[str, str]:
    return {**mail_env(outbox), "REALTIME_RECHECK": "0.5"}


def test_the_share_views_live_panel_updates_with_aggregates_and_stops_when_the_link_is_revoked(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("sharelive")
    host = unique_host("sharelive")
    site_id = owner.add_site(host)
    made = owner.http.post(f"/api/v1/sites/{site_id}/share-links", json={"name": "wall"}, headers=owner.csrf)
    assert made.status_code == 201, made.text
    link = made.json()
    outsider = browser.new_context(user_agent=CHROME_MAC, viewport=DESKTOP)
    try:
        page = errors.watch(outsider.new_page())
        # The panel's first count is held back until the visit below is stored: asked before the
        # visit, answered with it counted, as on a busy server. The visit must not count twice.
        held: list[Route] = []
        page.route(_asks_live_count, lambda route: route.continue_() if held else held.append(route))
        page.goto(link["url"] + "?period=today")
        expect(page.get_by_test_id("read-only")).to_be_visible()
        live = page.get_by_test_id("live")
        expect(live.locator(".dot:not(.off)")).to_have_count(1, timeout=10_000)  # connected
        expect(live.get_by_test_id("live-count")).to_have_text("0")

        # --- a visit: the feed, the count and the globe within 2 s
        first, second = f"sv-{uuid.uuid4().hex[:10]}", f"sw-{uuid.uuid4().hex[:10]}"
        started = time.monotonic()
        send_visit(datafast, site_id, host, first, "/pricing")
        item = live.get_by_test_id("live-item").filter(has_text="Viewed /pricing")
        expect(item).to_contain_text("Germany", timeout=2_000)
        expect(live.get_by_test_id("live-count")).to_have_text("1", timeout=2_000)
        assert time.monotonic() - started < 2, "the share view's live panel took more than 2 s"
        expect(page.locator('[data-testid="globe-marker"][data-country="DE"]')).to_have_count(1)
        deadline = time.monotonic() + 10
        while not datafast.spool_is_empty():
            assert time.monotonic() < deadline, "the visit was not stored within 10 s"
            page.wait_for_timeout(50)
        with page.expect_response(lambda response: _asks_live_count(response.url)) as answer:
            held[0].continue_()
        assert answer.value.json()["current_visitors"] == 1  # the visit is in the held answer
        expect(live.get_by_test_id("live-count-line")).to_have_attribute("aria-busy", "false")  # applied
        assert live.get_by_test_id("live-count").inner_text() == "1"
        # The same visitor again is no new visitor; another one is.
        send_visit(datafast, site_id, host, first, "/signup")
        expect(live.get_by_test_id("live-item").filter(has_text="Viewed /signup")).to_have_count(
            1, timeout=2_000
        )
        # Sent while the last visit's batch may still be inserting (its events are on the feed
        # before that): this one waits for it, up to 1.8 s under the whole suite's load here.
        send_visit(datafast, site_id, host, second, "/blog")
        expect(live.get_by_test_id("live-item").filter(has_text="Viewed /blog")).to_have_count(
            1, timeout=4_000
        )
        expect(live.get_by_test_id("live-count")).to_have_text("2")
        # Once the written events are counted by the server (2.5 s after the last), still 2.
        page.wait_for_timeout(3_500)
        expect(live.get_by_test_id("live-count")).to_have_text("2")

        # Aggregates only: no visitor list, no links to visitors, no visitor id anywhere on the page.
        expect(live.locator("a")).to_have_count(0)
        expect(page.locator('a[href*="/visitors"]')).to_have_count(0)
        expect(page.get_by_role("heading", name="Recent visitors")).to_have_count(0)
        html = page.content()
        assert first not in html
        assert second not in html
        shot(page, "share-live-desktop-light")

        # --- revoked: the stream ends at its next re-check and the panel says it is off
        revoked = owner.http.delete(f"/api/v1/sites/{site_id}/share-links/{link['id']}", headers=owner.csrf)
        assert revoked.status_code == 204
        expect(live.locator(".dot.off")).to_have_count(1, timeout=8_000)
        shown = live.get_by_test_id("live-item").count()
        send_visit(datafast, site_id, host, second, "/after-revocation")
        page.wait_for_timeout(1_500)
        expect(live.get_by_test_id("live-item")).to_have_count(shown)
    finally:
        outsider.close()


def test_a_share_link_embeds_on_its_allowed_origin_and_is_refused_elsewhere(
    browser: Browser,
    datafast: DataFast,
    test_site: LocalSite,
    sign_up: Callable[..., Account],
    errors: Errors,
) -> None:
    owner = sign_up("embed")
    host = unique_host("embed")
    site_id = owner.add_site(host)
    allowed = f"http://localhost:{test_site.port}"
    settings = owner.context(browser)
    visitors = browser.new_context(user_agent=CHROME_MAC, viewport=DESKTOP)
    try:
        # --- Settings → Share links: a link embeddable on the allowed origin, with its snippet
        page = errors.watch(settings.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}/settings?tab=share")
        page.get_by_label("Name").fill("Blog")
        page.get_by_label("Sites that may embed it").fill("http://blog.example.com")  # not https
        page.get_by_role("button", name="Create share link").click()
        expect(page.get_by_role("alert")).to_contain_text("use https")
        expect(page.get_by_test_id("share-url")).to_have_count(0)
        page.get_by_label("Sites that may embed it").fill(allowed + "/")
        page.get_by_role("button", name="Create share link").click()
        expect(page.get_by_role("status")).to_have_text("Share link created.")
        expect(page.get_by_role("listitem").filter(has_text="Blog")).to_contain_text(
            f"embeddable on {allowed}"
        )
        page.get_by_role("button", name="Embedding of share link Blog").click()
        snippet = page.get_by_test_id("embed-snippet")
        expect(snippet).to_contain_text('<iframe src="' + datafast.url + "/share/")
        shot(page, "settings-share-embed-desktop-light")
        snippet_html = snippet.inner_text()
        src = snippet_html.split('src="', 1)[1].split('"', 1)[0]
        assert src.endswith("?embed=1")

        # --- the allowed origin's page shows the dashboard, live, without the app's header
        body = f"<h1>Our numbers</h1>{snippet_html}"
        test_site.add("localhost", "/stats", page_html("", body))
        embedding = errors.watch(visitors.new_page())
        embedding.goto(f"{allowed}/stats")
        frame = embedding.frame_locator("iframe")
        expect(frame.get_by_test_id("read-only")).to_have_text("Shared dashboard · read-only", timeout=10_000)
        expect(frame.locator("header.top")).to_have_count(0)
        expect(frame.get_by_role("link", name="DataFast home")).to_have_count(0)
        live = frame.get_by_test_id("live")
        expect(live.locator(".dot:not(.off)")).to_have_count(1, timeout=10_000)
        send_visit(datafast, site_id, host, f"e-{uuid.uuid4().hex[:8]}", "/embedded")
        expect(live.get_by_test_id("live-item").filter(has_text="Viewed /embedded")).to_have_count(
            1, timeout=2_000
        )
        embedding.screenshot(path=str(SCREENSHOTS / "share-embed-allowed-desktop-light.png"), full_page=True)

        # --- any other origin: the browser refuses to show it in the frame
        # (Its refusal is logged to the console as an error: this page is not watched for errors.)
        refused = visitors.new_page()
        logged: list[str] = []
        refused.on("console", lambda message: logged.append(message.text))
        test_site.add("blocked.test", "/stats", page_html("", body))
        refused.goto(f"http://blocked.test:{test_site.port}/stats")
        deadline = time.monotonic() + 5
        while not any("frame-ancestors" in text for text in logged):
            assert time.monotonic() < deadline, f"no refusal logged: {logged}"
            refused.wait_for_timeout(50)
        (child,) = refused.main_frame.child_frames
        assert not child.url.startswith(datafast.url), child.url  # an error page, not the dashboard
        expect(refused.frame_locator("iframe").get_by_test_id("read-only")).to_have_count(0)
        refused.screenshot(path=str(SCREENSHOTS / "share-embed-refused-desktop-light.png"))
    finally:
        settings.close()
        visitors.close()

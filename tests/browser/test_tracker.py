"""The tracking script in Chromium against a running DataFast: what each visit stores in ClickHouse."""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DataFast,
    LocalSite,
    Stored,
    Visit,
    open_visit,
    page_html,
    queue_of,
    snippet,
)
from tests.helpers import CHROME_MAC

pytestmark = pytest.mark.browser

NewSite = Callable[..., tuple[str, str]]
Rows = list[dict[str, Any]]

SPA = """
<nav>
  <a id="home" href="/" data-route>Home</a>
  <a id="pricing" href="/pricing" data-route>Pricing</a>
  <a id="docs" href="/docs" data-route>Docs</a>
  <a id="faq" href="#faq">FAQ</a>
  <button id="filter">Yearly prices</button>
</nav>
<main id="view"></main>
<script>
(function () {
  function render() { document.getElementById("view").textContent = "page " + location.pathname; }
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-route]");
    if (link) {
      event.preventDefault();
      history.pushState({}, "", link.getAttribute("href"));
      render();
    } else if (event.target.id === "filter") {
      history.replaceState({}, "", location.pathname + "?billing=yearly");
    }
  });
  window.addEventListener("popstate", render);
  history.replaceState({ router: true }, "", location.href);
  render();
})();
</script>
"""

HASH_SPA = """
<nav><a id="pricing" href="#/pricing">Pricing</a> <a id="docs" href="#/docs">Docs</a></nav>
<main id="view"></main>
<script>
window.addEventListener("hashchange", function () {
  document.getElementById("view").textContent = "page " + location.hash;
});
</script>
"""


def pageviews(rows: Rows) -> list[str]:
    return [r["pathname"] for r in rows if r["event_type"] == "pageview"]


def cookies(page: Page) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies()}


def test_pageview_on_load_stores_referrer_utm_and_the_cookie_ids(
    visit: Visit, datafast: DataFast, test_site: LocalSite, new_site: NewSite, stored: Callable[[str], Stored]
) -> None:
    host, site_id = new_site()
    url = test_site.add(host, "/landing", page_html(snippet(datafast, site_id)))

    visit.page.goto(
        url + "?utm_source=newsletter&utm_medium=email&utm_campaign=launch",
        referer="https://www.google.com/search?q=analytics",
    )
    (row,) = stored(site_id).wait_for(1, visit.page)

    assert row["event_type"] == "pageview"
    assert (row["hostname"], row["pathname"]) == (host, "/landing")
    assert row["referrer"] == "https://www.google.com/search?q=analytics"
    assert (row["utm_source"], row["utm_medium"], row["utm_campaign"]) == ("newsletter", "email", "launch")
    assert (row["referrer_source"], row["channel"]) == ("newsletter", "email")  # UTM tags win
    assert (row["browser"], row["os"]) == ("Chrome", "macOS")
    # First-party cookies the site's own code can read, and the ids stored with the event.
    jar = cookies(visit.page)
    readable = visit.page.evaluate("document.cookie")
    assert f"datafast_visitor_id={jar['datafast_visitor_id']}" in readable
    assert f"datafast_session_id={jar['datafast_session_id']}" in readable
    assert row["visitor_id"] == jar["datafast_visitor_id"]
    assert row["session_id"] == jar["datafast_session_id"]
    session = next(c for c in visit.context.cookies() if c["name"] == "datafast_session_id")
    visitor = next(c for c in visit.context.cookies() if c["name"] == "datafast_visitor_id")
    assert not session["httpOnly"]
    assert not visitor["httpOnly"]
    assert 1700 < session["expires"] - _now(visit.page) <= 1800  # 30 minutes, renewed by every event
    assert visitor["expires"] - _now(visit.page) > 300 * 86400


def _now(page: Page) -> float:
    now: float = page.evaluate("Date.now() / 1000")
    return now


def test_ref_parameter_and_referrer_name_the_source_and_a_second_page_keeps_the_visitor(
    visit: Visit, datafast: DataFast, test_site: LocalSite, new_site: NewSite, stored: Callable[[str], Stored]
) -> None:
    host, site_id = new_site()
    first = test_site.add(
        host, "/", page_html(snippet(datafast, site_id), '<a id="next" href="/about">About</a>')
    )
    test_site.add(host, "/about", page_html(snippet(datafast, site_id)))

    visit.page.goto(first + "?ref=producthunt")
    store = stored(site_id)
    store.wait_for(1, visit.page)
    visit.page.click("#next")
    visit.page.wait_for_url("**/about")
    rows = store.wait_for(2, visit.page)

    assert pageviews(rows) == ["/", "/about"]
    assert (rows[0]["referrer_source"], rows[0]["channel"]) == ("Product Hunt", "social")
    assert rows[1]["referrer"] == first + "?ref=producthunt"  # the site's own page: not a new source
    assert rows[0]["visitor_id"] == rows[1]["visitor_id"]
    assert rows[0]["session_id"] == rows[1]["session_id"]


def test_spa_navigations_count_once_each(
    visit: Visit, datafast: DataFast, test_site: LocalSite, new_site: NewSite, stored: Callable[[str], Stored]
) -> None:
    host, site_id = new_site()
    url = test_site.add(host, "/", page_html(snippet(datafast, site_id), SPA))
    page = visit.page
    store = stored(site_id)

    page.goto(url)
    store.wait_for(1, page)
    page.click("#pricing")  # pushState → /pricing
    page.click("#pricing")  # pushState to the same path: no new pageview
    page.click("#filter")  # replaceState with a query on the same path: none either
    page.click("#faq")  # a hash jump (popstate): none
    page.click("#docs")  # pushState → /docs
    page.go_back()  # popstate: back to /pricing#faq
    page.wait_for_function("location.pathname === '/pricing'")
    rows = store.wait_for(4, page)

    assert pageviews(rows) == ["/", "/pricing", "/docs", "/pricing"]
    assert len({r["session_id"] for r in rows}) == 1
    assert rows[1]["page_url"] == f"http://{host}:{test_site.port}/pricing"


def test_hash_mode_counts_hash_routes(
    visit: Visit, datafast: DataFast, test_site: LocalSite, new_site: NewSite, stored: Callable[[str], Stored]
) -> None:
    host, site_id = new_site()
    url = test_site.add(host, "/app", page_html(snippet(datafast, site_id, hash=True), HASH_SPA))
    page = visit.page
    store = stored(site_id)

    page.goto(url)
    store.wait_for(1, page)
    page.click("#pricing")  # popstate and hashchange both fire: one pageview
    page.click("#docs")
    page.go_back()
    page.wait_for_function("location.hash === '#/pricing'")
    rows = store.wait_for(4, page)

    assert pageviews(rows) == ["/app", "/app#/pricing", "/app#/docs", "/app#/pricing"]


def test_goals_events_and_calls_made_before_the_script_loaded(
    visit: Visit, datafast: DataFast, test_site: LocalSite, new_site: NewSite, stored: Callable[[str], Stored]
) -> None:
    host, site_id = new_site(currency="EUR")
    head = (
        snippet(datafast, site_id, debug=True).replace(
            "</script>\n", '</script>\n<script>datafast("early_bird", {source: "inline"});</script>\n', 1
        )
        # A goal call made before the script loaded goes through the stub's queue.
    )
    body = (
        '<button id="signup" data-fast-goal="signup" data-fast-goal-plan="pro">Sign up</button>'
        '<button id="plain">no goal</button>'
    )
    url = test_site.add(host, "/pricing", page_html(head, body))
    page = visit.page
    store = stored(site_id)

    page.goto(url)
    page.wait_for_function("typeof window.datafast.goal === 'function'")
    page.click("#signup")
    page.click("#plain")
    page.evaluate(
        """() => {
        datafast.goal("checkout_started", 49.99);
        datafast("newsletter", {list: "weekly", position: 3});
        datafast.track("video_play", {video: "intro"});
        // Invalid: a warning in debug mode, nothing sent.
        datafast.goal("Not Lowercase");
        datafast.goal("x".repeat(65));
        datafast.goal("too_many", Object.fromEntries([...Array(11).keys()].map((i) => ["p" + i, "v"])));
        datafast.goal("too_long", {note: "y".repeat(256)});
        datafast.track("pageview");
    }"""
    )
    rows = store.wait_for(6, page)

    goals = {r["goal_name"]: r for r in rows if r["event_type"] == "goal"}
    assert set(goals) == {"early_bird", "signup", "checkout_started", "newsletter"}
    assert dict(goals["early_bird"]["props"]) == {"source": "inline"}
    assert dict(goals["signup"]["props"]) == {"plan": "pro"}
    assert (goals["checkout_started"]["revenue"], goals["checkout_started"]["currency"]) == (4999, "EUR")
    assert dict(goals["newsletter"]["props"]) == {"list": "weekly", "position": "3"}
    assert all(r["pathname"] == "/pricing" and r["event_name"] == r["goal_name"] for r in goals.values())
    (custom,) = [r for r in rows if r["event_type"] == "custom"]
    assert (custom["event_name"], dict(custom["props"])) == ("video_play", {"video": "intro"})
    assert pageviews(rows) == ["/pricing"]
    warnings = visit.console.texts("warning")
    assert len(warnings) == 5, warnings
    assert all(w.startswith("datafast: invalid") for w in warnings)


def test_identify_stores_the_user_and_a_hash_of_the_email(
    visit: Visit, datafast: DataFast, test_site: LocalSite, new_site: NewSite, stored: Callable[[str], Stored]
) -> None:
    host, site_id = new_site()
    url = test_site.add(host, "/welcome", page_html(snippet(datafast, site_id)))
    page = visit.page
    store = stored(site_id)

    page.goto(url)
    store.wait_for(1, page)
    page.evaluate("datafast.identify('user_42', {email: '  Founder@Example.com ', name: 'Ada Lovelace'})")
    rows = store.wait_for(2, page)

    (identify,) = [r for r in rows if r["event_type"] == "identify"]
    assert dict(identify["props"]) == {
        "user_id": "user_42",
        "name": "Ada Lovelace",
        "email_hash": hashlib.sha256(b"founder@example.com").hexdigest(),
    }
    assert identify["visitor_id"] == cookies(page)["datafast_visitor_id"]


def test_outbound_link_click_is_sent_as_the_page_goes_away(
    visit: Visit, datafast: DataFast, test_site: LocalSite, new_site: NewSite, stored: Callable[[str], Stored]
) -> None:
    host, site_id = new_site()
    elsewhere = test_site.add("partner.test", "/hello", page_html(""))
    body = f'<a id="out" href="{elsewhere}?from=us">Partner</a> <a id="in" href="/pricing">Pricing</a>'
    url = test_site.add(host, "/", page_html(snippet(datafast, site_id), body))
    page = visit.page
    store = stored(site_id)

    page.goto(url)
    store.wait_for(1, page)
    page.click("#out")
    page.wait_for_url("http://partner.test*/**")
    rows = store.wait_for(2)

    (outbound,) = [r for r in rows if r["event_type"] == "custom"]
    assert outbound["event_name"] == "outbound"
    assert dict(outbound["props"]) == {"url": elsewhere + "?from=us"}
    assert outbound["pathname"] == "/"


def test_cookieless_mode_sets_no_cookie_and_still_counts(
    visit: Visit, datafast: DataFast, test_site: LocalSite, new_site: NewSite, stored: Callable[[str], Stored]
) -> None:
    host, site_id = new_site()
    first = test_site.add(host, "/", page_html(snippet(datafast, site_id, cookieless=True), SPA))
    page = visit.page
    store = stored(site_id)

    page.goto(first)
    store.wait_for(1, page)
    page.click("#pricing")
    rows = store.wait_for(2, page)

    assert visit.context.cookies() == []
    assert page.evaluate("document.cookie") == ""
    assert pageviews(rows) == ["/", "/pricing"]
    # The server gives cookieless visits a daily-rotating id of its own: one visitor, one session.
    assert rows[0]["visitor_id"]
    assert rows[0]["visitor_id"] == rows[1]["visitor_id"]
    assert rows[0]["session_id"] == rows[1]["session_id"]
    assert all(e.get("visitor_id") is None for _, events in visit.posted for e in events)


def test_offline_then_online_delivers_every_queued_event_exactly_once(
    visit: Visit, datafast: DataFast, test_site: LocalSite, new_site: NewSite, stored: Callable[[str], Stored]
) -> None:
    host, site_id = new_site()
    url = test_site.add(host, "/", page_html(snippet(datafast, site_id), SPA))
    page = visit.page
    store = stored(site_id)

    page.goto(url)
    store.wait_for(1, page)
    visit.context.set_offline(True)
    page.wait_for_function("!navigator.onLine")
    page.click("#pricing")
    page.evaluate("datafast.goal('offline_goal'); datafast.track('offline_event', {n: 1})")
    page.click("#docs")
    page.wait_for_function("JSON.parse(localStorage.datafast_queue).length === 4")
    assert len(store.rows()) == 1  # nothing got through while offline

    visit.context.set_offline(False)
    rows = store.wait_for(5, page)

    assert pageviews(rows) == ["/", "/pricing", "/docs"]
    assert Counter(r["event_id"] for r in rows).most_common(1)[0][1] == 1
    # Each event was sent once and answered 202 once: the queue did not resend what got through.
    sent = visit.sent_ids()
    assert len(sent) == len(set(sent)) == 5
    assert all(status == 202 for status, _ in visit.posted)


def test_server_failures_keep_events_until_a_later_page_delivers_them_once(
    visit: Visit, datafast: DataFast, test_site: LocalSite, new_site: NewSite, stored: Callable[[str], Stored]
) -> None:
    host, site_id = new_site()
    url = test_site.add(
        host, "/", page_html(snippet(datafast, site_id), '<a id="next" href="/next">next</a>')
    )
    test_site.add(host, "/next", page_html(snippet(datafast, site_id)))
    page = visit.page
    store = stored(site_id)
    visit.expect_console_errors = True  # the browser logs each failed request
    failures: list[str] = []

    def fail(route: Any) -> None:
        failures.append(route.request.url)
        route.fulfill(status=503, body="down for maintenance")

    page.route(datafast.url + "/track", fail)
    page.goto(url)
    page.evaluate("datafast.goal('during_outage')")
    page.wait_for_function("JSON.parse(localStorage.datafast_queue || '[]').length === 2")
    deadline = time.monotonic() + 10
    while len(failures) < 2:  # the first send and a retry after the backoff, both refused
        assert time.monotonic() < deadline, failures
        page.wait_for_timeout(100)
    assert len(queue_of(page) or []) == 2
    assert store.rows() == []

    page.unroute(datafast.url + "/track")
    page.click("#next")  # the pagehide beacon may get through too: the server keeps one copy
    page.wait_for_url("**/next")
    rows = store.wait_for(3, page)

    assert sorted(pageviews(rows)) == ["/", "/next"]
    assert [r["goal_name"] for r in rows if r["event_type"] == "goal"] == ["during_outage"]
    assert len({r["event_id"] for r in rows}) == 3
    assert len(errors := visit.console.errors()) >= 2
    assert all("503" in e for e in errors), errors


def test_not_tracked_localhost_opt_out_and_foreign_hostnames(
    tmp_path: Path,
    visit: Visit,
    datafast: DataFast,
    test_site: LocalSite,
    new_site: NewSite,
    stored: Callable[[str], Stored],
) -> None:
    host, site_id = new_site(hostnames=["localhost"])
    page = visit.page
    store = stored(site_id)

    def ignored(url: str, reason: str) -> None:
        page.goto(url)
        page.wait_for_function("typeof window.datafast.goal === 'function'")
        page.evaluate("datafast.goal('should_not_count')")
        logs = visit.console.texts("log")
        assert f"datafast: ignored: {reason}" in logs, logs
        assert queue_of(page) is None
        assert visit.context.cookies() == []

    local = f"http://localhost:{test_site.port}/local"
    test_site.add("localhost", "/local", page_html(snippet(datafast, site_id, debug=True)))
    ignored(local, "localhost")

    test_site.add(host, "/", page_html(""))
    test_site.add(host, "/ignored", page_html(snippet(datafast, site_id, debug=True)))
    page.goto(f"http://{host}:{test_site.port}/")  # any page of the site, to set its localStorage
    page.evaluate("localStorage.setItem('datafast_ignore', 'true')")
    ignored(f"http://{host}:{test_site.port}/ignored", "datafast_ignore")
    page.evaluate("localStorage.removeItem('datafast_ignore')")

    other = f"other-{host}"
    test_site.add(other, "/", page_html(snippet(datafast, site_id, debug=True, domain=host)))
    ignored(f"http://{other}:{test_site.port}/", "hostname")
    allowed_hosts = snippet(datafast, site_id, debug=True, allowed_hostnames=f"www.{host}, shop.{host}")
    test_site.add(other, "/list", page_html(allowed_hosts))
    ignored(f"http://{other}:{test_site.port}/list", "hostname")

    # A page opened from a file (no hostname).
    saved = tmp_path / "saved.html"
    saved.write_text(page_html(snippet(datafast, site_id, debug=True)))
    ignored(saved.as_uri(), "localhost")

    assert visit.posted == []
    assert store.rows() == []

    # data-allow-localhost lets a developer try the script on their machine.
    test_site.add("localhost", "/allowed", page_html(snippet(datafast, site_id, allow_localhost=True)))
    page.goto(f"http://localhost:{test_site.port}/allowed")
    (row,) = store.wait_for(1, page)
    assert (row["hostname"], row["pathname"]) == ("localhost", "/allowed")


def test_automated_browsers_are_not_tracked(
    browser: Browser,
    datafast: DataFast,
    test_site: LocalSite,
    new_site: NewSite,
    stored: Callable[[str], Stored],
) -> None:
    host, site_id = new_site()
    url = test_site.add(host, "/", page_html(snippet(datafast, site_id, debug=True)))
    automated = browser.browser_type.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        visit = open_visit(automated, datafast)
        visit.page.goto(url)
        assert visit.page.evaluate("navigator.webdriver") is True
        visit.page.wait_for_function("typeof window.datafast.goal === 'function'")
        assert "datafast: ignored: bot" in visit.console.texts("log")
        assert queue_of(visit.page) is None
        assert visit.posted == []
        assert visit.console.errors() == []
    finally:
        automated.close()

    # A headless browser that hides navigator.webdriver still names itself in its User-Agent.
    headless = browser.new_context(user_agent=CHROME_MAC.replace("Chrome/", "HeadlessChrome/"))
    try:
        page = headless.new_page()
        logs: list[str] = []
        page.on("console", lambda message: logs.append(message.text))
        page.goto(url)
        assert page.evaluate("navigator.webdriver") is False
        page.wait_for_function("typeof window.datafast.goal === 'function'")
        assert "datafast: ignored: bot" in logs
        assert queue_of(page) is None
    finally:
        headless.close()
    assert stored(site_id).rows() == []


def test_the_only_global_added_is_datafast_and_a_second_copy_does_nothing(
    visit: Visit, datafast: DataFast, test_site: LocalSite, new_site: NewSite, stored: Callable[[str], Stored]
) -> None:
    host, site_id = new_site()
    tag = f'<script defer data-website-id="{site_id}" src="{datafast.url}/js/script.js"></script>'
    url = test_site.add(host, "/", page_html(tag + tag))  # no stub: the script alone, twice
    page = visit.page
    page.add_init_script(
        "sessionStorage.setItem('globals', JSON.stringify(Object.getOwnPropertyNames(window)))"
    )

    page.goto(url)
    stored(site_id).wait_for(1, page)  # one pageview, not two

    added = page.evaluate(
        """() => {
        const before = JSON.parse(sessionStorage.getItem("globals"));
        return Object.getOwnPropertyNames(window).filter((name) => !before.includes(name));
    }"""
    )
    assert added == ["datafast"]


def test_data_domain_shares_the_visitor_across_subdomains(
    visit: Visit, datafast: DataFast, test_site: LocalSite, new_site: NewSite, stored: Callable[[str], Stored]
) -> None:
    host, site_id = new_site()
    tag = snippet(datafast, site_id, domain=host)
    www = test_site.add(f"www.{host}", "/", page_html(tag))
    app = test_site.add(f"app.{host}", "/dashboard", page_html(tag))
    store = stored(site_id)

    visit.page.goto(www)
    store.wait_for(1, visit.page)
    visit.page.goto(app)
    rows = store.wait_for(2, visit.page)

    assert [r["hostname"] for r in rows] == [f"www.{host}", f"app.{host}"]
    assert rows[0]["visitor_id"] == rows[1]["visitor_id"]
    assert rows[0]["session_id"] == rows[1]["session_id"]
    (visitor,) = [c for c in visit.context.cookies() if c["name"] == "datafast_visitor_id"]
    assert visitor["domain"] == f".{host}"

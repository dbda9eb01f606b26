"""The tracker's optional extensions in Chromium against a running DataFast: each is loaded only when
its data-track-* attribute asks, and what it records reaches ClickHouse, the Stats API and the
dashboard."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DataFast, LocalSite, Stored, Visit, open_visit, page_html, snippet

pytestmark = pytest.mark.browser

Rows = list[dict[str, Any]]


def customs(rows: Rows) -> list[tuple[str, str, dict[str, str]]]:
    return [(r["event_name"], r["pathname"], dict(r["props"])) for r in rows if r["event_type"] == "custom"]


def loaded(page: Page, name: str) -> None:
    """Wait until the page has fetched and run the extension ``script.<name>.js``."""
    page.wait_for_function(
        "name => performance.getEntriesByType('resource')"
        ".some(e => e.name.endsWith('/js/script.' + name + '.js'))",
        arg=name,
    )
    page.wait_for_timeout(100)  # evaluated once fetched: a module runs right after


def scrolls(store: Stored, timeout: float = 15) -> list[tuple[str, int]]:
    """The site's ``page_scrolls`` rows (pathname, depth), once there is one."""
    deadline = time.monotonic() + timeout
    while True:
        result = store.client.query(
            "SELECT pathname, depth FROM page_scrolls WHERE website_id = {s:UUID} ORDER BY timestamp",
            parameters={"s": store.site_id},
        )
        if result.result_rows or time.monotonic() > deadline:
            return [(str(path), int(depth)) for path, depth in result.result_rows]
        time.sleep(0.05)


def test_scroll_to_75_percent_then_leave_shows_75_percent_in_the_stats_api_and_the_pages_panel(
    browser: Browser,
    visit: Visit,
    datafast: DataFast,
    test_site: LocalSite,
    stored: Callable[[str], Stored],
) -> None:
    host = f"s{uuid.uuid4().hex[:10]}.test"
    owner = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    site_id = datafast.create_site(host, owner=owner)
    head = snippet(datafast, site_id, track_scroll=True)
    # The link stays in view (fixed): following it scrolls nothing.
    body = '<a id="next" href="/next" style="position:fixed;top:0">Next</a><div style="height:4000px"></div>'
    url = test_site.add(host, "/article", page_html(head, body))
    test_site.add(host, "/next", page_html(snippet(datafast, site_id), "<h1>Next</h1>"))
    page = visit.page
    store = stored(site_id)

    page.goto(url)
    loaded(page, "scroll")
    page.evaluate("scrollTo(0, document.documentElement.scrollHeight * 0.75 - innerHeight)")
    page.wait_for_function(
        "Math.round((scrollY + innerHeight) / document.documentElement.scrollHeight * 100) == 75"
    )
    page.wait_for_timeout(200)  # the scroll event is dispatched with the next frame
    page.click("#next")
    page.wait_for_url("**/next")
    rows = store.wait_for(2, page)

    assert [r["pathname"] for r in rows] == ["/article", "/next"]  # no event row for the scroll report
    assert scrolls(store) == [("/article", 75)]

    # The Stats API and the dashboard's Pages panel, signed in as the site's owner.
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        owner_page = context.new_page()
        owner_page.goto(datafast.url + "/login")
        owner_page.get_by_label("Email").fill(owner)
        owner_page.get_by_label("Password", exact=True).fill("password1")
        owner_page.get_by_role("button", name="Sign in").click()
        owner_page.wait_for_url("**/sites**")
        answer = owner_page.request.get(
            f"{datafast.url}/api/v1/sites/{site_id}/breakdown?dimension=page&metrics=visitors,scroll_depth&period=today"
        )
        assert answer.status == 200, answer.text()
        by_page = {row["dimensions"][0]: row["metrics"] for row in answer.json()["rows"]}
        assert by_page == {
            "/article": {"visitors": 1, "scroll_depth": 75.0},
            "/next": {"visitors": 1, "scroll_depth": 0},  # the visitor is still on it: nothing reported
        }

        owner_page.goto(f"{datafast.url}/sites/{site_id}")
        pages = owner_page.get_by_test_id("panel-pages")
        expect(pages.get_by_role("columnheader", name="Scroll")).to_be_visible()
        article = pages.locator('tr[data-value="/article"] td[data-metric="scroll_depth"]')
        expect(article).to_have_text("75%")
        # The page the visitor is still on has no report yet: no figure rather than 0 %.
        expect(pages.locator('tr[data-value="/next"] td[data-metric="scroll_depth"]')).to_have_text("—")
    finally:
        context.close()


def test_a_single_page_app_reports_the_scroll_of_the_page_it_leaves(
    visit: Visit,
    datafast: DataFast,
    test_site: LocalSite,
    new_site: Callable[..., tuple[str, str]],
    stored: Callable[[str], Stored],
) -> None:
    host, site_id = new_site()
    body = (
        '<button id="go" style="position:fixed;top:0">Go</button><div style="height:3000px"></div>'
        "<script>document.getElementById('go').onclick = () => history.pushState({}, '', '/second')</script>"
    )
    url = test_site.add(host, "/first", page_html(snippet(datafast, site_id, track_scroll=True), body))
    page = visit.page
    store = stored(site_id)

    page.goto(url)
    loaded(page, "scroll")
    page.evaluate("scrollTo(0, document.documentElement.scrollHeight / 2 - innerHeight)")
    page.wait_for_function(
        "Math.round((scrollY + innerHeight) / document.documentElement.scrollHeight * 100) == 50"
    )
    page.wait_for_timeout(200)
    page.click("#go")  # the app's navigation: the report names /first, the page measured
    rows = store.wait_for(2, page)

    assert [r["pathname"] for r in rows] == ["/first", "/second"]
    assert scrolls(store) == [("/first", 50)]


def test_a_pdf_link_click_sends_a_file_download_event_and_the_list_is_configurable(
    visit: Visit,
    datafast: DataFast,
    test_site: LocalSite,
    new_site: Callable[..., tuple[str, str]],
    stored: Callable[[str], Stored],
) -> None:
    host, site_id = new_site()
    links = (
        '<a id="pdf" href="/files/report.pdf" download>Report</a> '
        '<a id="zip" href="/files/code.ZIP?v=2" download>Code</a> '
        '<a id="anchor" href="#top">Top</a>'
    )
    default = test_site.add(host, "/", page_html(snippet(datafast, site_id, track_downloads=True), links))
    only_zip = test_site.add(
        host,
        "/zip-only",
        page_html(snippet(datafast, site_id, track_downloads=True, download_extensions="zip"), links),
    )
    page = visit.page
    store = stored(site_id)

    page.goto(default)
    loaded(page, "downloads")
    page.click("#pdf")
    page.click("#anchor")
    rows = store.wait_for(2, page)
    base = f"http://{host}:{test_site.port}"
    assert customs(rows) == [("file_download", "/", {"url": f"{base}/files/report.pdf"})]

    page.goto(only_zip)
    loaded(page, "downloads")
    page.click("#pdf")  # not in data-download-extensions
    page.click("#zip")
    rows = store.wait_for(4, page)
    assert customs(rows)[1:] == [("file_download", "/zip-only", {"url": f"{base}/files/code.ZIP?v=2"})]


def test_an_opted_in_form_submit_sends_its_event_and_other_forms_send_nothing(
    visit: Visit,
    datafast: DataFast,
    test_site: LocalSite,
    new_site: Callable[..., tuple[str, str]],
    stored: Callable[[str], Stored],
) -> None:
    host, site_id = new_site()
    forms = (
        '<form data-datafast-form="signup" action="/thanks"><input name="email" value="a@b.c">'
        '<button id="signup">Sign up</button></form>'
        '<form action="/search"><input name="q" value="x"><button id="search">Search</button></form>'
    )
    url = test_site.add(host, "/", page_html(snippet(datafast, site_id, track_forms=True), forms))
    test_site.add(host, "/thanks", page_html(snippet(datafast, site_id), "Thanks"))
    test_site.add(host, "/search", page_html(snippet(datafast, site_id), "Results"))
    page = visit.page
    store = stored(site_id)

    page.goto(url)
    loaded(page, "forms")
    page.click("#signup")
    page.wait_for_url("**/thanks?**")
    rows = store.wait_for(3, page)
    assert customs(rows) == [("signup", "/", {})]

    page.goto(url)
    loaded(page, "forms")
    page.click("#search")
    page.wait_for_url("**/search?**")
    rows = store.wait_for(5, page)
    assert customs(rows) == [("signup", "/", {})]
    assert [r["pathname"] for r in rows if r["event_type"] == "pageview"] == ["/", "/thanks", "/", "/search"]


def test_a_404_page_sends_its_event_only_when_opted_in_and_extensions_load_only_when_asked(
    visit: Visit,
    datafast: DataFast,
    test_site: LocalSite,
    new_site: Callable[..., tuple[str, str]],
    stored: Callable[[str], Stored],
) -> None:
    host, site_id = new_site()
    marker = '<meta name="datafast-404">'
    missing = test_site.add(host, "/missing", page_html(marker + snippet(datafast, site_id, track_404=True)))
    fine = test_site.add(host, "/fine", page_html(snippet(datafast, site_id, track_404=True)))
    not_asked = test_site.add(host, "/gone", page_html(marker + snippet(datafast, site_id)))
    page = visit.page
    store = stored(site_id)
    scripts: list[str] = []
    page.on("request", lambda request: scripts.append(request.url) if "/js/" in request.url else None)

    page.goto(missing)
    loaded(page, "404")
    rows = store.wait_for(2, page)
    assert customs(rows) == [("404", "/missing", {"path": "/missing"})]

    page.goto(fine)
    loaded(page, "404")
    page.goto(not_asked)
    page.wait_for_function("typeof window.datafast.goal === 'function'")
    page.wait_for_timeout(300)
    rows = store.wait_for(4, page)
    assert customs(rows) == [("404", "/missing", {"path": "/missing"})]
    assert [url.removeprefix(datafast.url) for url in scripts] == [
        "/js/script.js",
        "/js/script.404.js",
        "/js/script.js",
        "/js/script.404.js",
        "/js/script.js",  # no data-track-404: no extension
    ]


def test_an_extension_that_fails_to_load_leaves_the_core_tracking(
    browser: Browser,
    datafast: DataFast,
    test_site: LocalSite,
    new_site: Callable[..., tuple[str, str]],
    stored: Callable[[str], Stored],
) -> None:
    host, site_id = new_site()
    url = test_site.add(host, "/", page_html(snippet(datafast, site_id, track_nothing=True)))
    visit = open_visit(browser, datafast)
    try:
        visit.page.goto(url)
        rows = stored(site_id).wait_for(1, visit.page)
        assert [r["event_type"] for r in rows] == ["pageview"]
    finally:
        visit.context.close()

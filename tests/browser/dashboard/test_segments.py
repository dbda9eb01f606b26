"""Saved segments and chart notes in Chromium: an admin filters the dashboard, saves the filters as a
segment, reloads and picks it (the chips, the URL and the numbers come back), adds a note on the
chart (its marker shows the text on hover and on keyboard focus), and deletes both; the public share
view shows neither. Expected numbers come from the hits the test sends, not from the server."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Account, Errors, Hit, shot, shots, track, unique_host

pytestmark = pytest.mark.browser

# Six visitors today: three see /pricing (one of them /docs too), two /blog, one only /.
HITS = [
    Hit("sa", "/pricing"),
    Hit("sb", "/pricing"),
    Hit("sc", "/pricing"),
    Hit("sc", "/docs"),
    Hit("sd", "/blog"),
    Hit("se", "/blog"),
    Hit("sf", "/"),
]
NOTE = "Launched on Product Hunt"


def visitors(page: Page, count: int) -> None:
    expect(page.get_by_test_id("kpi-visitors-value")).to_have_text(str(count), timeout=10_000)


def test_a_saved_segment_reopens_with_its_filters_and_a_note_shows_on_the_chart(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("segments")
    host = unique_host("seg")
    site_id = owner.add_site(host)
    track(datafast, site_id, host, HITS)
    dashboard = f"{datafast.url}/sites/{site_id}?period=today"
    context = owner.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(dashboard)
        visitors(page, 6)
        # Filter as people do: a row of the Pages panel, then a browser (every hit came from Chrome).
        page.get_by_test_id("panel-pages").get_by_role("button", name=re.compile(r"^\/pricing")).click()
        page.get_by_test_id("panel-devices").get_by_test_id("tab-browser").click()
        page.get_by_test_id("panel-devices").get_by_role("button", name=re.compile("^Chrome")).click()
        expect(page.get_by_test_id("filter-chip")).to_have_count(2)
        visitors(page, 3)

        page.get_by_role("button", name="Segments").click()
        expect(page.get_by_role("region", name="Saved segments")).to_contain_text("No saved segments yet.")
        page.get_by_label("Save the current filters as").fill("Pricing on Chrome")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_role("status")).to_have_text("Saved “Pricing on Chrome”.")
        stored = owner.http.get(f"/api/v1/sites/{site_id}/segments").json()
        assert [(s["name"], s["filters"]) for s in stored] == [
            (
                "Pricing on Chrome",
                [
                    {"dimension": "page", "operator": "is", "values": ["/pricing"]},
                    {"dimension": "browser", "operator": "is", "values": ["Chrome"]},
                ],
            )
        ]

        # A fresh load without filters, then the segment brings them back.
        page.goto(dashboard)
        visitors(page, 6)
        expect(page.get_by_test_id("filter-chip")).to_have_count(0)
        page.get_by_role("button", name="Segments").click()
        page.get_by_test_id("segment").filter(has_text="Pricing on Chrome").click()
        chips = page.get_by_test_id("filter-chip")
        expect(chips).to_have_count(2)
        expect(chips.nth(0)).to_have_text(re.compile(r"Page is\s+/pricing"))
        expect(chips.nth(1)).to_have_text(re.compile(r"Browser is\s+Chrome"))
        visitors(page, 3)
        expect(page).to_have_url(re.compile(r"filter=page%3D%3D%2Fpricing.*filter=browser%3D%3DChrome"))
        expect(page.get_by_role("button", name=re.compile("^Segments"))).to_contain_text("Pricing on Chrome")

        # A note on today: a marker over today's bucket, its text on hover.
        today = datetime.now(UTC).date().isoformat()
        page.get_by_role("button", name="+ Add note").click()
        expect(page.get_by_label("Date", exact=True)).to_have_value(today)  # the range's last day
        page.get_by_label("Note", exact=True).fill(NOTE)
        page.get_by_role("button", name="Save note").click()
        marker = page.get_by_test_id("note-marker")
        expect(marker).to_have_count(1)
        tip = page.get_by_role("tooltip")
        expect(tip).to_be_hidden()
        page.get_by_role("button", name=re.compile("^Note on ")).hover()
        expect(tip).to_be_visible()
        expect(tip).to_contain_text(NOTE)
        assert owner.http.get(f"/api/v1/sites/{site_id}/annotations").json()[0]["date"] == today
        shot(page, "segments-notes-desktop-light")

        # Both persist: a reload shows the note (on keyboard focus too) and lists the segment.
        page.reload()
        visitors(page, 3)
        pin = page.get_by_role("button", name=re.compile("^Note on "))
        pin.focus()
        expect(page.get_by_role("tooltip")).to_contain_text(NOTE)
        page.get_by_role("button", name=re.compile("^Segments")).click()
        shot(page, "segments-menu-desktop-light")
        page.get_by_role("button", name="Delete segment Pricing on Chrome").click()
        expect(page.get_by_role("region", name="Saved segments")).to_contain_text("No saved segments yet.")
        expect(page.get_by_test_id("filter-chip")).to_have_count(2)  # deleting does not clear the filters
        page.keyboard.press("Escape")
        page.get_by_text("Notes (1)").click()
        page.get_by_role("button", name=re.compile(f"^Delete the note of .*: {NOTE}$")).click()
        expect(page.get_by_test_id("note-marker")).to_have_count(0)
        assert owner.http.get(f"/api/v1/sites/{site_id}/segments").json() == []
        assert owner.http.get(f"/api/v1/sites/{site_id}/annotations").json() == []
    finally:
        context.close()


def test_the_share_view_shows_no_segments_nor_notes_and_the_chart_with_notes_in_both_themes(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("segshare")
    host = unique_host("segs")
    site_id = owner.add_site(host)
    track(datafast, site_id, host, HITS)
    today = datetime.now(UTC).date().isoformat()
    base = f"/api/v1/sites/{site_id}"
    saved = owner.http.post(
        f"{base}/segments",
        json={"name": "Blog", "filters": [{"dimension": "page", "values": ["/blog"]}]},
        headers=owner.csrf,
    )
    noted = owner.http.post(f"{base}/annotations", json={"date": today, "text": NOTE}, headers=owner.csrf)
    link = owner.http.post(f"{base}/share-links", json={"name": "public"}, headers=owner.csrf)
    assert saved.status_code == noted.status_code == link.status_code == 201

    public = browser.new_context()
    try:
        page = errors.watch(public.new_page())
        page.goto(link.json()["url"] + "?period=today")
        visitors(page, 6)
        expect(page.get_by_test_id("read-only")).to_be_visible()
        expect(page.get_by_test_id("segments")).to_have_count(0)
        expect(page.get_by_test_id("add-note")).to_have_count(0)
        expect(page.get_by_test_id("note-marker")).to_have_count(0)
    finally:
        public.close()

    def ready(page: Page) -> None:
        visitors(page, 6)
        page.get_by_role("button", name=re.compile("^Note on ")).focus()
        expect(page.get_by_role("tooltip")).to_contain_text(NOTE)

    shots(
        browser,
        owner.context(browser),
        f"{datafast.url}/sites/{site_id}?period=7d",
        "chart-notes",
        ready,
        errors,
    )

"""The privacy screen in Chromium: look a visitor up, download their data as JSON, erase them after
confirming, and see the dashboard's numbers without them.

Expected numbers come from the hits the test sends (``Hit``), not from the server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Dialog, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Account, Errors, Hit, Outbox, shot, track, unique_host

pytestmark = pytest.mark.browser


def test_a_visitor_is_looked_up_downloaded_and_erased_from_the_settings(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("privacy")
    host = unique_host("priv")
    site_id = owner.add_site(host)
    target, other = "p-target-1f3e", "p-other-9c2d"
    hits = [Hit(target, "/"), Hit(target, "/pricing"), Hit(target, "/signup")]
    hits += [Hit(other, "/"), Hit(other, "/blog")]
    ids = track(datafast, site_id, host, hits)
    mine = [i for i, h in zip(ids, hits, strict=True) if h.visitor == target]

    context = owner.context(browser, accept_downloads=True)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}/settings")
        page.get_by_role("tab", name="Privacy").click()
        expect(page).to_have_url(re.compile(r"\?tab=privacy$"))
        expect(page.get_by_text("None yet.")).to_be_visible()
        page.get_by_label("Find by").select_option("visitor_id")
        page.get_by_label("Visitor id").fill(target)
        page.get_by_role("button", name="Look up").click()
        found = page.get_by_test_id("privacy-found")
        expect(found).to_contain_text("1 visitor id")
        expect(found).to_contain_text(f"{len(mine)} events")
        shot(page, "settings-privacy-found-desktop-light")

        with page.expect_download() as started:
            page.get_by_role("button", name="Download JSON").click()
        download = started.value
        assert download.suggested_filename == f"{host}-privacy-export.json"
        exported = json.loads(download.path().read_text(encoding="utf-8"))
        assert exported["visitor_ids"] == [target]
        assert sorted(e["event_id"] for e in exported["tables"]["events"]) == sorted(mine)

        # Dismissing the confirmation erases nothing; accepting it erases.
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.get_by_role("button", name="Erase…").click()
        expect(found).to_be_visible()
        messages: list[str] = []

        def accept(dialog: Dialog) -> None:
            messages.append(dialog.message)
            dialog.accept()

        page.once("dialog", accept)
        page.get_by_role("button", name="Erase…").click()
        # An erase rebuilds the rollups of the person's days and waits out the 2 s other processes
        # may remember the site's local days (LocalDays.reset): seconds, more on a loaded machine.
        expect(page.get_by_test_id("privacy-erased")).to_contain_text(
            f"Erased 1 visitor id: {len(mine)} events", timeout=30_000
        )
        assert "cannot be undone" in messages[0]
        expect(page.get_by_test_id("privacy-request")).to_have_count(2)
        expect(page.get_by_test_id("privacy-request").first).to_contain_text("erase by visitor id")

        page.goto(f"{datafast.url}/sites/{site_id}?period=today")
        others = [h for h in hits if h.visitor == other]
        expect(page.get_by_test_id("kpi-visitors-value")).to_have_text("1")
        expect(page.get_by_test_id("kpi-pageviews-value")).to_have_text(str(len(others)))
    finally:
        context.close()

    again = owner.http.post(
        f"/api/v1/sites/{site_id}/privacy/export", json={"visitor_id": target}, headers=owner.csrf
    )
    assert again.status_code == 200, again.text
    assert again.json()["tables"] == {}


def test_a_viewer_is_told_that_privacy_requests_need_an_admin(
    browser: Browser,
    datafast: DataFast,
    sign_up: Callable[..., Account],
    outbox: Outbox,
    errors: Errors,
) -> None:
    owner, viewer = sign_up("privacy-owner"), sign_up("privacy-viewer")
    site_id = owner.add_site(unique_host("privv"))
    invited = owner.http.post(
        f"/api/v1/sites/{site_id}/invitations",
        json={"email": viewer.email, "role": "viewer"},
        headers=owner.csrf,
    )
    assert invited.status_code == 201, invited.text
    token = outbox.wait_for(viewer.email, "You are invited").link(datafast.url).split("token=", 1)[1]
    accepted = viewer.http.post("/api/v1/invitations/accept", json={"token": token}, headers=viewer.csrf)
    assert accepted.status_code == 200, accepted.text

    context = viewer.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}/settings?tab=privacy")
        expect(page.get_by_role("tabpanel")).to_contain_text("Only admins can handle privacy requests.")
        expect(page.get_by_role("button", name="Look up")).to_have_count(0)
    finally:
        context.close()

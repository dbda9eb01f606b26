"""The imports screen in Chromium: a Plausible export uploaded from Settings → Imports, its
progress and summary shown, and the dashboard's KPIs then count the imported days.

Expected numbers are summed from the export file the test builds (``tests/integration/imports``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Account, Errors, shot, unique_host
from tests.integration.imports.exports import plausible_zip, read_csv

pytestmark = pytest.mark.browser


def test_a_plausible_export_is_uploaded_from_the_settings_and_counted_on_the_dashboard(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("imports")
    site_id = owner.add_site(unique_host("imp"))
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=d) for d in (4, 3, 2)]
    archive = plausible_zip(days, seed=11)
    rows = read_csv(archive, "imported_visitors")

    context = owner.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}/settings")
        page.get_by_role("tab", name="Imports").click()
        expect(page).to_have_url(re.compile(r"\?tab=imports$"))
        expect(page.get_by_text("None yet.")).to_be_visible()
        page.get_by_label("From").select_option("plausible")
        page.get_by_label("Export file").set_input_files(
            {"name": "example_com_20261205.zip", "mimeType": "application/zip", "buffer": archive}
        )
        page.get_by_role("button", name="Import", exact=True).click()
        item = page.get_by_test_id("import")
        expect(item).to_contain_text("done", timeout=30_000)
        expect(item).to_contain_text(f"{days[0]} to {days[-1]}")
        summary = page.get_by_test_id("import-summary")
        expect(summary).to_contain_text("imported_visitors")
        expect(summary).to_contain_text("Custom events and goals: not imported")
        shot(page, "settings-imports-desktop-light")

        # A file that is not a Plausible export is refused with the server's reason.
        page.get_by_label("Export file").set_input_files(
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}
        )
        page.get_by_role("button", name="Import", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("zip archive")
        expect(page.get_by_test_id("import")).to_have_count(1)

        page.goto(f"{datafast.url}/sites/{site_id}")
        visitors = sum(int(r["visitors"]) for r in rows)
        pageviews = sum(int(r["pageviews"]) for r in rows)
        expect(page.get_by_test_id("kpi-visitors-value")).to_have_text(f"{visitors:,}", timeout=10_000)
        expect(page.get_by_test_id("kpi-pageviews-value")).to_have_text(f"{pageviews:,}")
    finally:
        context.close()

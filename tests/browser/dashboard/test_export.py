"""The CSV export in Chromium: started from the keyboard, its progress bar counts up to the
``X-Total-Rows`` total while the file streams in (the network is slowed through the DevTools protocol
so that the progress can be seen), and the downloaded file holds exactly the events sent.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Account, Errors, Hit, track, unique_host

pytestmark = pytest.mark.browser

PATHS = ["/", "/pricing", "/blog/one", "/blog/two", "/signup"]


def test_the_export_shows_its_progress_and_downloads_exactly_the_events_sent(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("export")
    host = unique_host("exp")
    site_id = owner.add_site(host)
    hits = [Hit(f"x{i // 4}", PATHS[i % len(PATHS)]) for i in range(160)]
    hits += [Hit("x0", "/signup", event_type="goal", goal_name="signup")]
    ids = track(datafast, site_id, host, hits)

    context = owner.context(browser, accept_downloads=True)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}?period=today")
        expect(page.get_by_test_id("kpi-visitors-value")).to_have_text(str(len({h.visitor for h in hits})))
        button = page.get_by_role("button", name="Export CSV")
        # Keyboard: the button is reached with Tab and shows a visible focus ring.
        button.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")
        expect(button).to_be_focused()
        outline = button.evaluate("b => [getComputedStyle(b).outlineStyle, getComputedStyle(b).outlineWidth]")
        assert outline[0] != "none", outline
        assert outline[1] != "0px", outline

        # About 20 KB/s: the CSV (hundreds of bytes a row) takes a few seconds to arrive.
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": 20_000, "uploadThroughput": -1},
        )
        with page.expect_download(timeout=60_000) as started:
            page.keyboard.press("Enter")
            progress = page.get_by_role("progressbar", name="Export progress")
            expect(progress).to_have_attribute("max", str(len(hits)))
            # Part of the rows counted, not all yet: the bar moves while the file streams.
            page.wait_for_function(
                """(total) => {
                    const status = document.querySelector('.export [role=status]');
                    const m = status && status.textContent.match(/^(\\d+) of (\\d+) events$/);
                    return m && Number(m[2]) === total && Number(m[1]) > 0 && Number(m[1]) < total;
                }""",
                arg=len(hits),
                timeout=30_000,
            )
            expect(button).to_be_disabled()
        download = started.value
        cdp.send(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        expect(progress).to_have_count(0)
        expect(button).to_be_enabled()
        assert download.suggested_filename == f"{host}-events.csv"
        path = download.path()
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    finally:
        context.close()

    assert len(rows) == len(hits)
    assert sorted(r["event_id"] for r in rows) == sorted(ids)
    assert Counter((r["event_type"], r["pathname"]) for r in rows) == Counter(
        ("goal" if h.goal_name else "pageview", h.path) for h in hits
    )
    assert {r["visitor_id"] for r in rows} == {h.visitor for h in hits}
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d.*", r["timestamp"]) for r in rows)

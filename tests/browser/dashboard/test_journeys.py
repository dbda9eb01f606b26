"""Journeys in Chromium: the top paths from the entry page, and the paths to a goal, as visited."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Account, Errors, shot, unique_host
from tests.helpers import CHROME_MAC

pytestmark = pytest.mark.browser

VISITS = {
    "ann": ["/", "/pricing", "/signup", "goal:signup", "/welcome"],
    "ben": ["/", "/pricing", "/signup", "goal:signup"],
    "cat": ["/", "/docs"],
    "eve": ["/", "/docs", "/docs"],
    "dan": ["/blog", "/pricing", "/pricing", "/checkout", "/done"],  # a reload counts once
}


def send(datafast: DataFast, site_id: str, host: str) -> None:
    """Each visit's steps a second apart (client times, with the batch's send time), one batch."""
    now = time.time() * 1000
    events = []
    for n, (visitor, steps) in enumerate(VISITS.items()):
        for i, step in enumerate(steps):
            event = {
                "website_id": site_id,
                "page_url": f"https://{host}{step if step.startswith('/') else '/signup'}",
                "event_id": uuid.uuid4().hex,
                "visitor_id": visitor,
                "session_id": f"{visitor}-s",
                "timestamp": now - 600_000 + n * 60_000 + i * 1000,
            }
            if step.startswith("goal:"):
                event |= {"event_type": "goal", "goal_name": step.removeprefix("goal:")}
            events.append(event)
    answer = httpx.post(
        datafast.url + "/track",
        json={"sent_at": now, "events": events},
        headers={"user-agent": CHROME_MAC},
        timeout=15,
    )
    assert answer.status_code == 202, answer.text
    deadline = time.monotonic() + 15
    while not datafast.spool_is_empty():
        assert time.monotonic() < deadline, "the spool was not written within 15 s"
        time.sleep(0.05)


def shown(page: Page, *, with_rate: bool) -> list[tuple[str | None, ...]]:
    rows = page.get_by_test_id("journey")
    return [
        (
            rows.nth(i).get_attribute("data-path"),
            rows.nth(i).locator('[data-metric="visits"]').inner_text(),
            rows.nth(i).locator('[data-metric="share"]').inner_text(),
            rows.nth(i).locator('[data-metric="conversion_rate"]').inner_text() if with_rate else None,
        )
        for i in range(rows.count())
    ]


def test_top_paths_and_the_paths_to_a_goal(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("journeys")
    host = unique_host("jrn")
    site_id = owner.add_site(host)
    send(datafast, site_id, host)

    context = owner.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}?period=today")
        page.get_by_role("link", name="Journeys").click()
        rows = page.get_by_test_id("journey")
        # Most visits first, then most converted, then by path: the order is the API's, fully set.
        expect(rows).to_have_count(4)
        assert shown(page, with_rate=True) == [
            ("/ → /docs", "2", "40%", "0%"),
            ("/ → /pricing → /signup", "1", "20%", "100%"),
            ("/ → /pricing → /signup → /welcome", "1", "20%", "100%"),
            ("/blog → /pricing → /checkout → /done", "1", "20%", "0%"),
        ]
        shot(page, "journeys-desktop-light")

        page.get_by_test_id("journey-steps").select_option("2")
        expect(rows).to_have_count(3)
        assert shown(page, with_rate=True) == [
            ("/ → /pricing → …", "2", "40%", "100%"),
            ("/ → /docs", "2", "40%", "0%"),
            ("/blog → /pricing → …", "1", "20%", "0%"),
        ]

        page.get_by_test_id("journey-goal").select_option("signup")
        expect(page.get_by_role("heading", name="Paths to “signup”")).to_be_visible()
        expect(rows).to_have_count(1)
        assert shown(page, with_rate=False) == [("/ → /pricing → …", "2", "100%", None)]
        page.get_by_test_id("journey-steps").select_option("4")
        expect(rows).to_have_attribute("data-path", "/ → /pricing → /signup")
        assert "goal=signup" in page.url  # the URL is the state
        assert "steps" not in page.url
    finally:
        context.close()

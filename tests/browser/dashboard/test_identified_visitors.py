"""Identified users in Chromium: a visitor who was ``identify``-ed shows by name in the visitors
panel and on their profile (with the user id), others stay anonymous; the API says the same."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Account, Errors, Hit, shot, track, unique_host

pytestmark = pytest.mark.browser


def test_identified_visitors_show_their_name_and_user_id(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("identified")
    host = unique_host("idn")
    site_id = owner.add_site(host)
    track(
        datafast,
        site_id,
        host,
        [
            Hit("ada-visitor", "/pricing"),
            Hit(
                "ada-visitor",
                "/welcome",
                event_type="identify",
                props={"user_id": "user_42", "name": "Ada Lovelace"},
            ),
            Hit("bob-visitor", "/"),
        ],
    )
    listed = owner.http.get(f"/api/v1/sites/{site_id}/visitors", params={"period": "today"}).json()
    names = {v["visitor_id"]: (v["user_id"], v["name"]) for v in listed["visitors"]}
    assert names == {"ada-visitor": ("user_42", "Ada Lovelace"), "bob-visitor": ("", "")}

    context = owner.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}?period=today")
        panel = page.get_by_test_id("panel-visitors")
        expect(panel.get_by_test_id("visitor-link")).to_have_count(2)
        expect(panel.get_by_role("link", name="Direct visitor")).to_have_count(1)
        panel.get_by_role("link", name=re.compile("^Ada Lovelace user_42")).click()
        expect(page).to_have_url(re.compile(r"/visitors/ada-visitor$"))
        expect(page.get_by_test_id("visitor-name")).to_have_text("Ada Lovelace")
        expect(page.get_by_test_id("visitor-user-id")).to_have_text("user_42")
        shot(page, "visitor-identified-desktop-light")
    finally:
        context.close()

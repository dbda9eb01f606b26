"""Every control of the screens has an accessible name (as Chromium's accessibility tree computes
it, read through the DevTools protocol), and keyboard focus is visible as Tab moves through the
dashboard, starting with the skip link.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Account, Errors, Hit, track, unique_host

pytestmark = pytest.mark.browser

CONTROLS = {"button", "link", "textbox", "combobox", "checkbox", "radio", "tab", "searchbox", "spinbutton"}
SETTINGS_TABS = ["site", "goals", "payments", "team", "keys", "share", "privacy", "imports", "alerts"]


def unnamed_controls(context: BrowserContext, page: Page) -> list[str]:
    """Controls in the accessibility tree with an empty name: '<role> <html snippet>'.

    The page must have controls at all (a blank or failed page would pass otherwise)."""
    cdp = context.new_cdp_session(page)
    try:
        nodes: list[dict[str, Any]] = cdp.send("Accessibility.getFullAXTree")["nodes"]
        found = []
        controls = 0
        for node in nodes:
            role = node.get("role", {}).get("value")
            if node.get("ignored") or role not in CONTROLS:
                continue
            controls += 1
            if str(node.get("name", {}).get("value", "")).strip():
                continue
            described = cdp.send("DOM.describeNode", {"backendNodeId": node["backendDOMNodeId"]})["node"]
            found.append(f"{role} <{described.get('localName')} {described.get('attributes')}>")
        assert controls >= 3, f"{page.url}: only {controls} controls in the accessibility tree"
        return found
    finally:
        cdp.detach()


def loaded(page: Page) -> None:
    expect(page.locator("h1").first).to_be_visible()
    expect(page.locator(".skeleton")).to_have_count(0, timeout=10_000)
    expect(page.get_by_role("status").filter(has_text="Loading")).to_have_count(0)


def test_every_control_has_an_accessible_name_and_keyboard_focus_is_visible(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("a11y")
    host = unique_host("a11y")
    site_id = owner.add_site(host)
    track(datafast, site_id, host, [Hit("aa", "/"), Hit("aa", "/pricing"), Hit("ab", "/blog")])
    share = owner.http.post(
        f"/api/v1/sites/{site_id}/share-links",
        json={"name": "a11y", "embed_origins": ["https://blog.example.com"]},
        headers=owner.csrf,
    )
    assert share.status_code == 201, share.text
    site = f"{datafast.url}/sites/{site_id}"
    screens = [
        datafast.url + "/sites",
        datafast.url + "/sites/new",
        datafast.url + "/account",
        f"{site}?period=today",
        f"{site}/setup",
        f"{site}/funnels",
        *(f"{site}/settings?tab={tab}" for tab in SETTINGS_TABS),
    ]
    # The shared dashboard (its live panel and globe), and as an embed shows it (no app header).
    public = [datafast.url + p for p in ("/login", "/signup", "/reset")] + [
        share.json()["url"],
        share.json()["embed_url"],
    ]

    context = owner.context(browser)
    outsider = browser.new_context()
    try:
        page = errors.watch(context.new_page())
        problems = {}
        for url in screens:
            page.goto(url)
            loaded(page)
            if missing := unnamed_controls(context, page):
                problems[url] = missing
            if url.endswith("tab=share"):  # the link's embedding form, opened
                page.get_by_role("button", name="Embedding of share link a11y").click()
                expect(page.get_by_test_id("embed-snippet")).to_be_visible()
                if missing := unnamed_controls(context, page):
                    problems[url + " (embedding)"] = missing
        anonymous = errors.watch(outsider.new_page())
        for url in public:
            anonymous.goto(url)
            loaded(anonymous)
            if missing := unnamed_controls(outsider, anonymous):
                problems[url] = missing
        assert problems == {}

        # --- keyboard: the first Tab shows the skip link; every focused control has a visible ring
        page.goto(f"{site}?period=today")
        loaded(page)
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        expect(skip).to_be_focused()
        box = skip.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["y"] >= 0
        unringed = []
        for _ in range(30):
            page.keyboard.press("Tab")
            focused = page.evaluate(
                """() => {
                    const el = document.activeElement, style = getComputedStyle(el);
                    const text = (el.getAttribute('aria-label') || el.textContent || '').trim();
                    return {tag: el.tagName, text: text.slice(0, 40),
                            ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2};
                }"""
            )
            if not focused["ring"]:
                unringed.append(focused)
        assert unringed == []
        # Enter on the skip link moves focus to the content.
        page.keyboard.press("Shift+Tab")
        page.goto(f"{site}?period=today")
        loaded(page)
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.locator("main#content")).to_be_focused()
    finally:
        context.close()
        outsider.close()

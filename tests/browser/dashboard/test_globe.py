"""The live globe in Chromium: a tracked visit is a marker on the WebGL globe within 2 seconds (seen
in the canvas's pixels, not only in the DOM), a payment a marker of its own colour; the globe turns
by itself unless the browser asks for reduced motion; without WebGL the flat map takes its place.

Debian's Chromium offers WebGL even with ``--disable-gpu``, through its software renderer
(SwiftShader, behind ANGLE): the tests check that it does, so the globe is what they see — and
launch a second Chromium with ``--disable-3d-apis`` for the browser without WebGL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, NOT_AUTOMATED, DataFast
from tests.browser.dashboard.conftest import SCREENSHOTS, Account, Errors, send_visit, unique_host
from tests.browser.pixels import Image, decode_png

pytestmark = pytest.mark.browser

ACCENT = (0x4F, 0x46, 0xE5)  # --accent (light): visitors
REVENUE = (0xD9, 0x77, 0x06)  # --revenue (light): payments
MARKER_PIXELS = 12
"""Pixels of a marker's colour that make a drawn marker (one is about 10 px across here)."""


def _globe_pixels(page: Page) -> Image:
    return decode_png(page.get_by_test_id("globe").locator(".sphere").screenshot())


def _has_webgl(page: Page) -> bool:
    found: bool = page.evaluate(
        "() => { const c = document.createElement('canvas');"
        " return !!(c.getContext('webgl2') || c.getContext('webgl')); }"
    )
    return found


def _wait_for_pixels(page: Page, colour: tuple[int, int, int], deadline: float) -> tuple[Image, float]:
    """Screenshots of the globe until one shows ``colour`` as a marker; returns it and when it was
    taken (decoding a screenshot here takes a while: the marker was on screen when it was taken)."""
    while True:
        taken = time.monotonic()
        image = decode_png(page.get_by_test_id("globe").locator(".sphere").screenshot())
        if image.count(colour) >= MARKER_PIXELS:
            return image, taken
        found = image.count(colour)
        assert taken < deadline, f"no marker of colour {colour} on the globe in time ({found} px)"


def _dashboard(account: Account, browser: Browser, site_id: str, errors: Errors, **options: Any) -> Page:
    context = account.context(browser, **options)
    page = errors.watch(context.new_page())
    page.goto(f"{account.http.base_url}/sites/{site_id}?period=today")
    expect(page.get_by_test_id("live").locator(".dot:not(.off)")).to_have_count(1, timeout=10_000)
    return page


def test_a_tracked_visit_shows_on_the_globe_within_2_seconds_and_a_payment_in_its_own_colour(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("globe")
    host = unique_host("globe")
    site_id = owner.add_site(host)
    page = _dashboard(owner, browser, site_id, errors)
    try:
        assert _has_webgl(page), "this Chromium offers no WebGL (SwiftShader): the globe cannot be tested"
        globe = page.get_by_test_id("globe")
        expect(globe).to_have_attribute("data-ready", "yes", timeout=10_000)
        expect(page.get_by_role("button", name="Globe")).to_have_attribute("aria-pressed", "true")
        expect(page.get_by_test_id("world-map")).to_have_count(0)
        # Drawn (the dotted continents and the glow), and no marker yet.
        page.wait_for_timeout(700)  # the map texture decodes asynchronously
        empty = _globe_pixels(page)
        assert empty.distinct() > 50, "the globe's canvas is blank"
        assert empty.differing(background=(255, 255, 255)) > empty.width * empty.height // 10
        assert empty.count(ACCENT) < MARKER_PIXELS
        assert empty.count(REVENUE) < MARKER_PIXELS

        # --- a visit from Germany: a marker within 2 s, in the DOM's list and in the canvas
        visitor = f"g-{uuid.uuid4().hex[:10]}"
        started = time.monotonic()
        send_visit(datafast, site_id, host, visitor)
        marker = page.locator('[data-testid="globe-marker"][data-kind="visitor"][data-country="DE"]')
        expect(marker).to_have_count(1, timeout=2_000)
        expect(marker).to_have_text("Germany: 1 visitors")
        drawn, seen = _wait_for_pixels(page, ACCENT, started + 2)
        assert seen - started < 2, f"the visit took {seen - started:.2f}s to show on the globe"
        assert drawn.count(REVENUE) < MARKER_PIXELS  # a visit is not a payment
        label = "Globe of live activity: Germany, 1 visitor"
        expect(globe.locator(".sphere")).to_have_attribute("aria-label", label)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "globe-live-visitor-desktop-light.png"), full_page=True)

        # --- the visitor pays: a payment marker in the revenue colour, beside the visitor's
        paid = owner.http.post(
            "/api/v1/payments",
            json={
                "website_id": site_id,
                "amount": "29.00",
                "currency": "USD",
                "transaction_id": f"o-{uuid.uuid4().hex[:8]}",
                "visitor_id": visitor,
            },
            headers=owner.csrf,
        )
        assert paid.status_code == 201, paid.text
        started = time.monotonic()
        payment = page.locator('[data-testid="globe-marker"][data-kind="payment"][data-country="DE"]')
        expect(payment).to_have_count(1, timeout=2_000)
        both, _ = _wait_for_pixels(page, REVENUE, started + 2)
        assert both.count(ACCENT) >= MARKER_PIXELS, "the visitor's marker went when the payment came"
        expect(page.get_by_test_id("live-item").first).to_contain_text("Paid $29.00")
        page.get_by_test_id("globe").scroll_into_view_if_needed()
        page.get_by_test_id("globe").screenshot(path=str(SCREENSHOTS / "globe-payment-desktop-light.png"))

        # --- the flat map on request (remembered), with the same pins; and back
        page.get_by_role("button", name="Map").click()
        expect(page.get_by_test_id("globe")).to_have_count(0)
        expect(page.locator('[data-testid="map-pin"][data-kind="visitor"]')).to_have_count(1)
        expect(page.locator('[data-testid="map-pin"][data-kind="payment"]')).to_have_count(1)
        page.reload()
        expect(page.get_by_role("button", name="Map")).to_have_attribute("aria-pressed", "true")
        expect(page.get_by_test_id("world-map")).to_be_visible()
        page.get_by_role("button", name="Globe").click()
        expect(page.get_by_test_id("globe")).to_have_attribute("data-ready", "yes", timeout=10_000)
    finally:
        page.context.close()


def test_the_globe_turns_by_itself_unless_reduced_motion_is_asked_for(
    browser: Browser, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("motion")
    site_id = owner.add_site(unique_host("motion"))

    def frames(page: Page) -> tuple[bytes, bytes]:
        expect(page.get_by_test_id("globe")).to_have_attribute("data-ready", "yes", timeout=10_000)
        page.wait_for_timeout(1_700)  # past the drawings made while the map texture decodes
        sphere = page.get_by_test_id("globe").locator(".sphere")
        first = sphere.screenshot()
        page.wait_for_timeout(1_000)
        return first, sphere.screenshot()

    moving = _dashboard(owner, browser, site_id, errors)
    try:
        before, after = frames(moving)
        assert before != after, "the globe stood still"
    finally:
        moving.context.close()
    still = _dashboard(owner, browser, site_id, errors, reduced_motion="reduce")
    try:
        before, after = frames(still)
        assert before == after, "the globe turned although the browser asked for reduced motion"
        assert decode_png(before).distinct() > 50, "the still globe is blank"
    finally:
        still.context.close()


@pytest.fixture(scope="module")
def no_webgl(playwright: Playwright) -> Iterator[Browser]:
    """Chromium without WebGL (as a browser or a machine without it)."""
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, NOT_AUTOMATED, "--disable-3d-apis"]
    )
    yield browser
    browser.close()


def test_without_webgl_the_flat_map_shows_the_live_pins(
    no_webgl: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("flat")
    host = unique_host("flat")
    site_id = owner.add_site(host)
    context: BrowserContext = owner.context(no_webgl)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}?period=today")
        assert not _has_webgl(page)
        expect(page.get_by_test_id("live").locator(".dot:not(.off)")).to_have_count(1, timeout=10_000)
        expect(page.get_by_test_id("globe-unavailable")).to_be_visible()
        expect(page.get_by_test_id("globe")).to_have_count(0)
        expect(page.get_by_role("button", name="Globe")).to_have_count(0)  # nothing to switch to
        send_visit(datafast, site_id, host, f"f-{uuid.uuid4().hex[:8]}")
        expect(page.locator('[data-testid="map-pin"][data-kind="visitor"]')).to_have_count(1, timeout=2_000)
        page.get_by_test_id("world-map").screenshot(path=str(SCREENSHOTS / "globe-fallback-desktop.png"))
    finally:
        context.close()


def test_the_globe_at_phone_width_in_the_dark(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("dark")
    host = unique_host("dark")
    site_id = owner.add_site(host)
    page = _dashboard(
        owner,
        browser,
        site_id,
        errors,
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        color_scheme="dark",
    )
    try:
        expect(page.get_by_test_id("globe")).to_have_attribute("data-ready", "yes", timeout=10_000)
        send_visit(datafast, site_id, host, f"d-{uuid.uuid4().hex[:8]}")
        expect(page.get_by_test_id("globe-marker")).to_have_count(1, timeout=2_000)
        dark_accent = (0x81, 0x8C, 0xF8)  # --accent (dark)
        _wait_for_pixels(page, dark_accent, time.monotonic() + 3)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the dashboard scrolls sideways at phone width ({width}px)"
        page.get_by_test_id("globe").scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "globe-live-phone-dark.png"))
    finally:
        page.context.close()

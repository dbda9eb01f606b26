"""Two-factor sign-in end to end in Chromium: set it up in the account settings (the secret read off
the page, codes computed as an authenticator app would), sign in with a code, with a recovery code,
and turn it off. Every screen on the way has named controls. This module's DataFast requires it of
site owners (REQUIRE_TWO_FACTOR_FOR_OWNERS): an owner without it is sent to the set-up screen.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import RESEND_KEY, Account, Errors, Outbox, shot, unique_host
from tests.browser.dashboard.test_accessibility import unnamed_controls
from tests.totp import Authenticator

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def datafast_extra_env(outbox: Outbox) -> dict[str, str]:
    return {
        "RESEND_API_KEY": RESEND_KEY,
        "RESEND_API_URL": outbox.url,
        "MAIL_FROM": "DataFast <noreply@datafast.test>",
        "SIGNUP_LIMIT_PER_IP": "10000",
        "SIGNUP_LIMIT_PER_DOMAIN": "10000",
        "REQUIRE_TWO_FACTOR_FOR_OWNERS": "true",
    }


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def password_step(page: Page, account: Account) -> None:
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password", exact=True).fill(account.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()


def test_set_up_sign_in_with_a_code_and_a_recovery_code_then_turn_off(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    account = sign_up("twofactor")
    context = account.context(browser)
    try:
        page = errors.watch(context.new_page())

        # --- set up: Account → Two-factor authentication
        page.goto(datafast.url + "/sites")
        page.get_by_role("link", name="Account").click()
        expect(page.get_by_role("heading", name="Account settings")).to_be_visible()
        section = page.get_by_role("region", name="Two-factor authentication")
        expect(section.get_by_test_id("two-factor-state")).to_contain_text("Off.")
        section.get_by_role("button", name="Set up two-factor authentication").click()
        expect(section.get_by_role("img", name="QR code of your two-factor secret")).to_be_visible()
        assert section.locator(".qr svg").count() == 1
        secret = section.get_by_test_id("two-factor-secret").inner_text()
        assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
        assert unnamed_controls(context, page) == []
        shot(page, "two-factor-enrol-desktop-light")
        app = Authenticator(secret)

        section.get_by_label("6-digit code from the app").fill(
            "000000" if app.code() != "000000" else "111111"
        )
        section.get_by_role("button", name="Turn on").click()
        expect(section.get_by_role("alert")).to_have_text("Wrong or expired code")
        section.get_by_label("6-digit code from the app").fill(app.reuse())
        section.get_by_role("button", name="Turn on").click()

        expect(section.get_by_role("status")).to_have_text("Two-factor authentication is on.")
        codes = section.get_by_role("list", name="Recovery codes").locator("code").all_inner_texts()
        assert len(codes) == 10
        assert all(re.fullmatch(r"[a-z2-7]{5}-[a-z2-7]{5}-[a-z2-7]{5}", c) for c in codes), codes
        expect(section.get_by_test_id("two-factor-state")).to_contain_text("On.")
        expect(section.get_by_test_id("two-factor-state")).to_contain_text("10 recovery codes left")

        # --- sign in with a code from the app
        sign_out(page)
        password_step(page, account)
        assert unnamed_controls(context, page) == []
        shot(page, "two-factor-sign-in-desktop-light")
        page.get_by_label("Code from your authenticator app").fill(app.code())
        page.get_by_role("button", name="Verify").click()
        expect(page).to_have_url(re.compile(r"/sites$"))
        expect(page.get_by_role("heading", name="No sites yet")).to_be_visible()

        # --- sign in with a recovery code (once)
        sign_out(page)
        password_step(page, account)
        page.get_by_role("button", name="Use a recovery code").click()
        page.get_by_label("Recovery code").fill(codes[0])
        page.get_by_role("button", name="Verify").click()
        expect(page).to_have_url(re.compile(r"/sites$"))

        sign_out(page)
        password_step(page, account)
        page.get_by_role("button", name="Use a recovery code").click()
        page.get_by_label("Recovery code").fill(codes[0])
        page.get_by_role("button", name="Verify").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong or expired code")
        page.get_by_label("Recovery code").fill(codes[1])
        page.get_by_role("button", name="Verify").click()
        expect(page).to_have_url(re.compile(r"/sites$"))

        # --- turn it off with a code from the app
        page.get_by_role("link", name="Account").click()
        section = page.get_by_role("region", name="Two-factor authentication")
        expect(section.get_by_test_id("two-factor-state")).to_contain_text("8 recovery codes left")
        section.get_by_label("Code from your app, or a recovery code").fill(app.code())
        section.get_by_role("button", name="Turn off two-factor authentication").click()
        expect(section.get_by_role("status")).to_have_text("Two-factor authentication is off.")
        expect(section.get_by_test_id("two-factor-state")).to_contain_text("Off.")

        # --- the password alone signs in again
        sign_out(page)
        page.get_by_label("Email").fill(account.email)
        page.get_by_label("Password", exact=True).fill(account.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/sites$"))
    finally:
        context.close()


def test_an_owner_without_it_is_sent_to_set_it_up_when_the_operator_requires_it(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    account = sign_up("required")
    host = unique_host("req")
    account.add_site(host)  # now an owner: the API refuses the rest until the second factor is on
    assert account.http.get("/api/v1/sites").status_code == 403
    context = account.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(datafast.url + "/sites")

        expect(page).to_have_url(re.compile(r"/account$"))
        section = page.get_by_role("region", name="Two-factor authentication")
        expect(section.get_by_test_id("two-factor-required")).to_contain_text(
            "requires two-factor authentication of site owners"
        )
        page.get_by_role("link", name="Sites", exact=True).click()
        expect(page).to_have_url(re.compile(r"/account$"))  # nowhere else to go yet

        section.get_by_role("button", name="Set up two-factor authentication").click()
        app = Authenticator(section.get_by_test_id("two-factor-secret").inner_text())
        section.get_by_label("6-digit code from the app").fill(app.code())
        section.get_by_role("button", name="Turn on").click()
        expect(section.get_by_role("status")).to_have_text("Two-factor authentication is on.")
        expect(section.get_by_test_id("two-factor-required")).to_have_count(0)

        page.get_by_role("link", name="Sites", exact=True).click()
        expect(page).to_have_url(re.compile(r"/sites$"))
        expect(page.get_by_role("link", name=re.compile(host))).to_be_visible()
    finally:
        context.close()

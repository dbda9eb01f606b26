"""The account page in Chromium: where you are signed in (another browser signed out from here
loses its session), a password change (a wrong current password gets the server's reason), and
deleting the account (confirmed by typing its email; its sites go with it)."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import PASSWORD, Account, Errors, shots, unique_host

pytestmark = pytest.mark.browser

NEW_PASSWORD = "another long passphrase 42"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


def _login(datafast: DataFast, email: str, password: str) -> httpx.Client:
    other = httpx.Client(base_url=datafast.url, timeout=15, headers={"user-agent": FIREFOX})
    answer = other.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert answer.status_code == 200, answer.text
    return other


def test_sessions_password_and_deleting_the_account(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("account")
    site_id = owner.add_site(unique_host("acc"))
    elsewhere = _login(datafast, owner.email, PASSWORD)
    context = owner.context(browser)
    try:
        page = errors.watch(context.new_page())
        page.goto(f"{datafast.url}/account")
        rows = page.get_by_test_id("session")
        expect(rows).to_have_count(2)
        expect(rows.filter(has_text="This browser")).to_have_count(1)
        page.get_by_role("button", name=re.compile("^Sign out Firefox on Linux")).click()
        expect(page.get_by_role("status")).to_have_text("That browser is signed out.")
        expect(rows).to_have_count(1)
        assert elsewhere.get("/api/v1/account").status_code == 401

        page.get_by_label("Current password").fill("not my password at all")
        page.get_by_label("New password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("alert")).to_be_visible()
        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("status")).to_contain_text("Password changed")
        _login(datafast, owner.email, NEW_PASSWORD).close()

        delete = page.get_by_role("button", name="Delete my account")
        expect(delete).to_be_disabled()
        page.get_by_label(re.compile("^Type your email")).fill(owner.email.upper())
        expect(delete).to_be_enabled()
        delete.click()
        expect(page).to_have_url(re.compile(r"/login$"))
    finally:
        context.close()
        elsewhere.close()

    gone = httpx.post(
        f"{datafast.url}/api/v1/auth/login", json={"email": owner.email, "password": NEW_PASSWORD}
    )
    assert gone.status_code == 401, gone.text
    assert owner.http.get(f"/api/v1/sites/{site_id}").status_code == 401


def test_the_account_page_in_light_dark_phone_and_desktop(
    browser: Browser, datafast: DataFast, sign_up: Callable[..., Account], errors: Errors
) -> None:
    owner = sign_up("account-look")
    owner.add_site(unique_host("acc"))
    shots(
        browser,
        owner.context(browser),
        f"{datafast.url}/account",
        "account",
        lambda page: expect(page.get_by_test_id("session")).to_have_count(1),
        errors,
    )

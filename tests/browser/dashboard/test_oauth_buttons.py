""" "Sign in with Google" appears only for a configured provider, and signs a person in.

This module's DataFast has Google configured (a local stand-in speaking its OAuth 2.0 + PKCE
protocol) and X not: the login page must offer Google only. The servers of the other browser
modules configure no provider, and their login page shows no button
(``test_auth_flows.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import Errors, Outbox, shot
from tests.helpers import CHROME_MAC
from tests.integration.accounts.oauth_server import RunningServer, StandInOAuth


@pytest.fixture(scope="module")
def google() -> Iterator[StandInOAuth]:
    state = StandInOAuth("google")
    server = RunningServer(state)
    yield state
    server.stop()


@pytest.fixture(scope="module")
def datafast_extra_env(outbox: Outbox, google: StandInOAuth) -> dict[str, str]:
    return {
        "RESEND_API_KEY": "re_browser_test_key",
        "RESEND_API_URL": outbox.url,
        **google.settings(),
    }


def test_the_login_page_offers_the_configured_provider_only_and_it_signs_in(
    browser: Browser, datafast: DataFast, google: StandInOAuth, errors: Errors
) -> None:
    email = f"oauth-{uuid.uuid4().hex[:8]}@example.com"
    google.account = {"sub": uuid.uuid4().hex, "email": email, "email_verified": True, "name": "Ada"}
    context = browser.new_context(user_agent=CHROME_MAC, viewport={"width": 1280, "height": 900})
    try:
        page = errors.watch(context.new_page())
        page.goto(datafast.url + "/login")
        buttons = page.get_by_test_id("oauth-buttons")
        expect(buttons.get_by_role("link")).to_have_count(1)
        expect(buttons.get_by_role("link", name="Sign in with Google")).to_be_visible()
        shot(page, "login-with-google-desktop-light")

        page.goto(datafast.url + "/signup")
        expect(page.get_by_role("link", name="Sign up with Google")).to_be_visible()
        page.goto(datafast.url + "/reset")
        expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
        expect(page.get_by_test_id("oauth-buttons")).to_have_count(0)

        page.goto(datafast.url + "/login")
        page.get_by_role("link", name="Sign in with Google").click()
        # Google (the stand-in) sends the browser back; DataFast signs the new account in.
        expect(page).to_have_url(datafast.url + "/")
        me = page.request.get(datafast.url + "/api/v1/auth/me")
        assert me.status == 200, me.text()
        assert me.json()["user"]["email"] == email
        assert google.errors == []
    finally:
        context.close()

"""Mailed links in Chromium: password reset, email confirmation and team invitations, read from the
mail DataFast sends through the Resend API (a local stand-in, see conftest), and what a viewer may do.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DataFast
from tests.browser.dashboard.conftest import PASSWORD, Account, Errors, Outbox, shot, shots, unique_host
from tests.helpers import CHROME_MAC

pytestmark = pytest.mark.browser

NEW_PASSWORD = "battery-staple-42"


def sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_password_reset_from_the_mailed_link_then_only_the_new_password_works(
    browser: Browser,
    datafast: DataFast,
    outbox: Outbox,
    sign_up: Callable[..., Account],
    errors: Errors,
) -> None:
    account = sign_up("reset", verified=False)
    # Sign-up mailed a confirmation link: it opens a page that confirms the address once.
    confirm = outbox.wait_for(account.email, "Confirm your email").link(datafast.url)
    assert "/verify-email?token=" in confirm

    context = browser.new_context(user_agent=CHROME_MAC, viewport={"width": 1280, "height": 900})
    try:
        page = errors.watch(context.new_page())
        page.goto(confirm)
        expect(page.get_by_role("status")).to_have_text("Your email address is confirmed.")
        page.goto(confirm)  # single-use
        expect(page.get_by_role("alert")).to_be_visible()

        # No OAuth provider is configured here: the login page asks which, and shows no button.
        with page.expect_response(lambda r: r.url.endswith("/api/v1/auth/oauth")) as asked:
            page.goto(datafast.url + "/login")
        assert asked.value.json() == {"providers": [], "signup_open": True}
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        expect(page.get_by_test_id("oauth-buttons")).to_have_count(0)
        page.get_by_role("link", name="Forgot your password?").click()
        expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
        page.get_by_label("Email").fill(account.email)
        page.get_by_role("button", name="Email me a link").click()
        expect(page.get_by_role("status")).to_contain_text("we've emailed it a link")

        mail = outbox.wait_for(account.email, "Reset your DataFast password")
        assert mail.sender == "DataFast <noreply@datafast.test>"
        link = mail.link(datafast.url)
        assert re.search(r"/reset-password\?token=[\w-]+$", link), link
        page.goto(link)
        expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
        shot(page, "reset-new-password-desktop-light")
        page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        page.get_by_role("button", name="Set password").click()
        expect(page).to_have_url(re.compile(r"/login\?reset=done$"))
        expect(page.get_by_test_id("password-changed")).to_have_text(
            "Your password was changed. Sign in with the new one."
        )

        # The reset ended every session: the API client's cookie is signed out.
        assert account.http.get("/api/v1/auth/me").status_code == 401

        sign_in(page, account.email, account.password)
        expect(page.get_by_role("alert")).to_have_text("Wrong email or password")
        expect(page).to_have_url(re.compile(r"/login"))
        sign_in(page, account.email, NEW_PASSWORD)
        expect(page).to_have_url(re.compile(r"/sites$"))
        expect(page.get_by_role("heading", name="No sites yet")).to_be_visible()

        # The link was used: opening it again says so instead of changing anything.
        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(re.compile(r"/login"))
        page.goto(link)
        page.get_by_label("New password", exact=True).fill("another-pass-7")
        page.get_by_role("button", name="Set password").click()
        expect(page.get_by_role("alert")).to_be_visible()
        assert (
            httpx.post(
                datafast.url + "/api/v1/auth/login",
                json={"email": account.email, "password": "another-pass-7"},
                timeout=10,
            ).status_code
            == 401
        )
    finally:
        context.close()

    shots(
        browser,
        None,
        datafast.url + "/reset",
        "reset-request",
        lambda p: expect(p.get_by_role("button", name="Email me a link")).to_be_visible(),
        errors,
    )


def test_an_invited_viewer_signs_up_from_the_mail_sees_the_site_and_cannot_change_it(
    browser: Browser,
    datafast: DataFast,
    outbox: Outbox,
    sign_up: Callable[..., Account],
    errors: Errors,
) -> None:
    owner = sign_up("owner")
    host = unique_host("inv")
    site_id = owner.add_site(host)
    invitee = f"viewer-{uuid.uuid4().hex[:8]}@example.com"

    owner_context = owner.context(browser)
    guest = browser.new_context(user_agent=CHROME_MAC, viewport={"width": 1280, "height": 900})
    try:
        page = errors.watch(owner_context.new_page())
        page.goto(f"{datafast.url}/sites/{site_id}/settings")
        page.get_by_role("tab", name="Team").click()
        page.get_by_label("Invite by email").fill(invitee)
        page.get_by_label("Role").select_option("viewer")
        page.get_by_role("button", name="Send invitation").click()
        expect(page.get_by_role("status")).to_have_text("Invitation sent.")
        expect(page.get_by_role("tabpanel")).to_contain_text(f"{invitee} invited as viewer")
        shot(page, "settings-team-desktop-light")

        mail = outbox.wait_for(invitee, f"You are invited to {host}")
        assert owner.email in mail.text
        link = mail.link(datafast.url)
        assert "/invitations/accept?token=" in link

        # --- the invitee has no account: the link explains, sign-up comes back to it
        visitor = errors.watch(guest.new_page())
        visitor.goto(link)
        expect(visitor.get_by_role("heading", name="Join a site on DataFast")).to_be_visible()
        shot(visitor, "invitation-signed-out-desktop-light")
        visitor.get_by_role("link", name="Create an account").click()
        expect(visitor.get_by_role("heading", name="Create your account")).to_be_visible()
        visitor.get_by_label("Email").fill(invitee)
        visitor.get_by_label("Password", exact=True).fill(PASSWORD)
        visitor.get_by_role("button", name="Create account").click()
        expect(visitor).to_have_url(re.compile(r"/invitations/accept\?token="))
        expect(visitor.get_by_text(f"You are signed in as {invitee}")).to_be_visible()
        visitor.get_by_role("button", name="Accept the invitation").click()
        expect(visitor).to_have_url(re.compile(rf"/sites/{site_id}$"))
        expect(visitor.get_by_role("heading", name=host, level=1)).to_be_visible()

        # --- what a viewer sees: no settings link or export on the dashboard…
        expect(visitor.get_by_role("link", name="Funnels")).to_be_visible()
        expect(visitor.get_by_role("link", name="Settings")).to_have_count(0)
        expect(visitor.get_by_role("button", name="Export CSV")).to_have_count(0)
        visitor.goto(datafast.url + "/sites")
        expect(visitor.get_by_role("link", name=host)).to_be_visible()
        expect(visitor.get_by_text(f"{host} · viewer")).to_be_visible()

        # …and settings opened by URL say plainly that changes need an admin, with no forms to try
        visitor.goto(f"{datafast.url}/sites/{site_id}/settings")
        note = visitor.get_by_test_id("viewer-note")
        expect(note).to_contain_text("changing them needs the admin role")
        expect(visitor.get_by_role("button", name="Save")).to_have_count(0)
        expect(visitor.get_by_label("Name", exact=True)).to_be_disabled()
        visitor.get_by_role("tab", name="Goals").click()
        expect(visitor.get_by_text("Only admins can add or remove goals.")).to_be_visible()
        expect(visitor.get_by_role("button", name="Add goal")).to_have_count(0)
        visitor.get_by_role("tab", name="Team").click()
        expect(visitor.get_by_test_id("member").filter(has_text=invitee)).to_contain_text("viewer")
        expect(visitor.get_by_role("button", name="Send invitation")).to_have_count(0)
        expect(visitor.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
        visitor.get_by_role("tab", name="Share links").click()
        expect(visitor.get_by_text("Only admins can see, create or revoke share links.")).to_be_visible()
        shot(visitor, "settings-viewer-desktop-light")

        # The server enforces it too: the viewer's own session cannot change the site or invite.
        answers = visitor.evaluate(
            """async (base) => {
                const csrf = document.cookie.match(/(?:^|; )datafast_csrf=([^;]*)/)[1];
                const send = (method, path, body) => fetch(base + path, {method,
                    headers: {'content-type': 'application/json', 'x-csrf-token': decodeURIComponent(csrf)},
                    body: JSON.stringify(body)}).then(async r => [r.status, (await r.json()).detail]);
                return [await send('PATCH', '', {name: 'taken over'}),
                        await send('POST', '/invitations', {email: 'x@example.com', role: 'admin'}),
                        await send('POST', '/goals', {name: 'g', kind: 'event', event_name: 'g'})];
            }""",
            f"/api/v1/sites/{site_id}",
        )
        for status, detail in answers:
            assert status == 403, answers
            assert "needs the admin role" in detail, answers

        # The owner's team now lists the viewer; the used invitation cannot be used again.
        page.reload()
        page.get_by_role("tab", name="Team").click()
        expect(page.get_by_test_id("member").filter(has_text=invitee)).to_contain_text("viewer")
        visitor.goto(link)
        visitor.get_by_role("button", name="Accept the invitation").click()
        expect(visitor.get_by_role("alert")).to_contain_text("already used")

        shots(
            browser,
            guest,
            f"{datafast.url}/sites/{site_id}/settings",
            "settings-viewer",
            lambda p: expect(p.get_by_test_id("viewer-note")).to_be_visible(),
            errors,
        )
    finally:
        owner_context.close()
        guest.close()
    shots(
        browser,
        None,
        link,
        "invitation-signed-out",
        lambda p: expect(p.get_by_role("link", name="Create an account")).to_be_visible(),
        errors,
    )

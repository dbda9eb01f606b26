"""Account takeover and brute force: what an unverified account may do, what a credential reset
ends, scoped API keys, and login limits that cannot be raced or used to lock others out."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.app import create_app
from datafast.domain.accounts.auth import LOGIN_LIMIT, login_with_password
from datafast.domain.accounts.services import UserService
from datafast.errors import TooManyRequests, Unauthorized
from datafast.lib.mail import LogMailer
from datafast.lib.ratelimit import MemoryRateLimiter
from tests.conftest import SettingsFactory
from tests.integration.accounts.conftest import PASSWORD, Client, Mailbox, login, signup, unique_email

NEW_PASSWORD = "a new secret 2"


async def test_an_unverified_account_cannot_mint_keys_links_or_invitations(client: Client) -> None:
    """The pre-hijack: sign up with someone else's address and mint a credential that outlives them."""
    squatter = await signup(client, verified=False)
    site = await squatter.create_site()  # onboarding works before the mail is read

    key = await squatter.post("/api/v1/api-keys", json={"name": "backdoor"})
    link = await squatter.post(f"/api/v1/sites/{site['id']}/share-links", json={"name": "backdoor"})
    invite = await squatter.post(
        f"/api/v1/sites/{site['id']}/invitations", json={"email": unique_email(), "role": "admin"}
    )

    for response in (key, link, invite):
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "Confirm your email" in response.json()["detail"]


async def test_a_password_reset_ends_keys_sessions_and_share_links(client: Client, mailbox: Mailbox) -> None:
    holder = await signup(client)  # whoever holds the account now (verified: keys allowed)
    site = await holder.create_site()
    key = (await holder.post("/api/v1/api-keys", json={"name": "k"})).json()["key"]
    link = (await holder.post(f"/api/v1/sites/{site['id']}/share-links", json={})).json()
    stats = f"/api/v1/sites/{site['id']}/metrics"
    assert (await client.get(stats, headers={"Authorization": f"Bearer {key}"})).status_code == 200

    assert (await client.post("/api/v1/auth/password-reset", json={"email": holder.email})).status_code == 202
    token = await mailbox.token(holder.email, "Reset your DataFast password")
    confirmed = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert confirmed.status_code == 204, confirmed.text

    assert (await client.get(stats, headers={"Authorization": f"Bearer {key}"})).status_code == 401
    assert (await holder.get("/api/v1/auth/me")).status_code == 401
    assert (await client.get(f"/api/v1/share/{link['slug']}")).status_code == 404
    owner = await login(client, holder.email, NEW_PASSWORD)
    assert (await owner.get(stats)).status_code == 200  # the site itself stays


async def test_a_password_change_ends_keys_and_other_sessions(client: Client) -> None:
    user = await signup(client)
    other_browser = await login(client, user.email)
    key = (await user.post("/api/v1/api-keys", json={})).json()["key"]

    changed = await user.post(
        "/api/v1/account/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert changed.status_code == 204, changed.text

    assert (await user.get("/api/v1/auth/me")).status_code == 200  # this browser stays signed in
    assert (await other_browser.get("/api/v1/auth/me")).status_code == 401
    assert (await client.get("/api/v1/sites", headers={"Authorization": f"Bearer {key}"})).status_code == 401


async def test_only_the_newest_reset_link_works(client: Client, mailbox: Mailbox) -> None:
    user = await signup(client)
    await client.post("/api/v1/auth/password-reset", json={"email": user.email})
    first = await mailbox.token(user.email, "Reset your DataFast password")
    mailbox.messages.clear()
    await client.post("/api/v1/auth/password-reset", json={"email": user.email})
    second = await mailbox.token(user.email, "Reset your DataFast password")
    assert first != second

    old = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": first, "password": NEW_PASSWORD}
    )
    new = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": second, "password": NEW_PASSWORD}
    )

    assert old.status_code == 410
    assert new.status_code == 204


async def test_api_keys_never_delete_sites_or_change_the_team(client: Client) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    full = (await owner.post("/api/v1/api-keys", json={})).json()["key"]
    auth = {"Authorization": f"Bearer {full}"}
    base = f"/api/v1/sites/{site['id']}"

    refused = [
        await client.delete(base, headers=auth),
        await client.post(
            f"{base}/invitations", json={"email": unique_email(), "role": "admin"}, headers=auth
        ),
        await client.post(f"{base}/share-links", json={}, headers=auth),
        await client.post(
            f"{base}/revenue/connections",
            json={"provider": "stripe", "webhook_secret": "whsec_" + "x" * 32},
            headers=auth,
        ),
    ]

    assert [r.status_code for r in refused] == [403] * 4, [r.text for r in refused]
    assert (await owner.get(base)).status_code == 200  # still there
    goal = await client.post(
        f"{base}/goals", json={"name": "Signup", "kind": "event", "event_name": "signup"}, headers=auth
    )
    assert goal.status_code == 201, goal.text  # configuration is what a write key is for


async def test_a_payments_key_records_payments_and_nothing_else(client: Client) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    created = await owner.post("/api/v1/api-keys", json={"name": "checkout", "scopes": ["payments"]})
    assert created.status_code == 201, created.text
    assert created.json()["api_key"]["scopes"] == ["payments"]
    auth = {"Authorization": f"Bearer {created.json()['key']}"}

    payment = await client.post(
        "/api/v1/payments",
        json={"website_id": site["id"], "transaction_id": "tx-1", "amount": "10.00", "currency": "USD"},
        headers=auth,
    )
    stats = await client.get(f"/api/v1/sites/{site['id']}/metrics", headers=auth)
    goal = await client.post(
        f"/api/v1/sites/{site['id']}/goals",
        json={"name": "x", "kind": "event", "event_name": "x"},
        headers=auth,
    )

    assert payment.status_code == 201, payment.text
    assert stats.status_code == 403
    assert goal.status_code == 403


async def test_unknown_scopes_are_refused(client: Client) -> None:
    owner = await signup(client)
    response = await owner.post("/api/v1/api-keys", json={"scopes": ["admin"]})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


async def test_concurrent_wrong_passwords_cannot_outrun_the_limit(client: Client) -> None:
    user = await signup(client)
    attempts = [
        client.post("/api/v1/auth/login", json={"email": user.email, "password": f"guess {n} 1"})
        for n in range(40)
    ]

    statuses = [r.status_code for r in await asyncio.gather(*attempts)]

    assert statuses.count(401) == LOGIN_LIMIT, statuses
    assert statuses.count(429) == 40 - LOGIN_LIMIT


async def test_failed_guesses_from_one_network_do_not_lock_the_owner_out(db_session: AsyncSession) -> None:
    email = unique_email()
    user = await UserService(session=db_session).create_user(email, PASSWORD, verified=True)
    user_id = user.id
    await db_session.commit()  # a login ends its read transaction before hashing
    limiter = MemoryRateLimiter()
    for n in range(LOGIN_LIMIT):
        with pytest.raises(Unauthorized):
            await login_with_password(db_session, limiter, email, f"guess {n} 1", "2001:db8:1:2::1")

    # Another address in the attacker's /64 is the same client; the owner elsewhere is not.
    with pytest.raises(TooManyRequests):
        await login_with_password(db_session, limiter, email, PASSWORD, "2001:db8:1:2:ffff::9")
    signed_in = await login_with_password(db_session, limiter, email, PASSWORD, "198.51.100.7")
    assert signed_in.id == user_id


async def test_sign_ups_are_limited_per_client_and_per_email_domain(make_settings: SettingsFactory) -> None:
    settings = make_settings(SIGNUP_LIMIT_PER_IP="3", SIGNUP_LIMIT_PER_DOMAIN="2")
    domain = f"d{uuid.uuid4().hex[:8]}.example"
    async with AsyncTestClient(create_app(settings)) as client:
        statuses = []
        for n in range(4):
            response = await client.post(
                "/api/v1/auth/signup", json={"email": f"u{n}@{domain}", "password": PASSWORD}
            )
            client.cookies.clear()
            statuses.append(response.status_code)
        other_domain = await client.post(
            "/api/v1/auth/signup", json={"email": unique_email(), "password": PASSWORD}
        )

    # The domain allows 2; the refused ones still count for the client, which allows 3.
    assert statuses == [201, 201, 429, 429]
    assert other_domain.status_code == 429


async def test_the_log_mailer_never_writes_a_usable_link(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "Reset here: https://dash.example.com/reset-password?token=abcDEF_123-xyz&x=1\n"
    with caplog.at_level(logging.WARNING):
        await LogMailer().send("a@example.com", "Reset your DataFast password", text)
    written = caplog.text + "".join(capsys.readouterr())
    assert "reset-password?token=[redacted]&x=1" in written
    assert "abcDEF_123-xyz" not in written

"""Login with Google and X against local stand-ins speaking their OAuth 2.0 + PKCE protocol."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from datafast.app import create_app
from datafast.lib.adapters import Adapters
from datafast.server.api.accounts import OAUTH_STARTS_PER_IP
from datafast.settings import Settings
from tests.conftest import SettingsFactory
from tests.integration.accounts.conftest import (
    PASSWORD,
    Client,
    Mailbox,
    session_cookie,
    signup,
    unique_email,
)
from tests.integration.accounts.oauth_server import RunningServer, StandInOAuth


@pytest.fixture
def google() -> Iterator[StandInOAuth]:
    state = StandInOAuth("google")
    server = RunningServer(state)
    yield state
    server.stop()


@pytest.fixture
def x() -> Iterator[StandInOAuth]:
    state = StandInOAuth("x")
    server = RunningServer(state)
    yield state
    server.stop()


@pytest.fixture
def settings(
    make_settings: SettingsFactory, mailbox: Mailbox, google: StandInOAuth, x: StandInOAuth
) -> Settings:
    return make_settings(
        SMTP_URL=f"smtp://127.0.0.1:{mailbox.port}",  # type: ignore[attr-defined]
        **google.settings(),
        **x.settings(),
    )


async def oauth_login(client: Client, provider: str) -> httpx.Response:
    """What a browser does: start, sign in at the provider, come back to the callback."""
    start = await client.get(f"/api/v1/auth/oauth/{provider}/start", follow_redirects=False)
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(start.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    try:
        return await client.get(f"{back.path}?{back.query}", follow_redirects=False)
    finally:
        client.cookies.clear()


async def me(client: Client, session: str) -> httpx.Response:
    return await client.get("/api/v1/auth/me", headers={"Cookie": f"datafast_session={session}"})


async def test_the_configured_providers_are_listed_for_the_login_buttons(client: Client) -> None:
    answer = await client.get("/api/v1/auth/oauth")

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "providers": [
            {"name": "google", "label": "Google", "start_url": "/api/v1/auth/oauth/google/start"},
            {"name": "x", "label": "X", "start_url": "/api/v1/auth/oauth/x/start"},
        ],
        "signup_open": True,
    }


async def test_no_provider_configured_lists_none(make_settings: SettingsFactory) -> None:
    async with AsyncTestClient(create_app(make_settings(SIGNUP_OPEN="false"))) as bare:
        answer = await bare.get("/api/v1/auth/oauth")
        assert answer.json() == {"providers": [], "signup_open": False}
        assert (await bare.get("/api/v1/auth/oauth/google/start")).status_code == 404


async def test_google_login_creates_a_verified_account_with_pkce(
    client: Client, google: StandInOAuth
) -> None:
    email = unique_email()
    google.account = {"sub": "g-1", "email": email, "email_verified": True, "name": "Ada"}

    start = await client.get("/api/v1/auth/oauth/google/start", follow_redirects=False)
    query = parse_qs(urlsplit(start.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == ["http://localhost:8000/api/v1/auth/oauth/google/callback"]
    # The state cookie is sealed: neither the state nor the PKCE verifier shows in it.
    assert start.headers["set-cookie"].startswith("datafast_oauth=")
    assert query["state"][0] not in start.headers["set-cookie"]
    client.cookies.clear()

    response = await oauth_login(client, "google")

    assert response.status_code == 302, response.text
    assert response.headers["location"] == "http://localhost:8000/"
    body = (await me(client, session_cookie(response))).json()
    assert body["user"]["email"] == email
    assert body["user"]["email_verified"] is True
    assert google.errors == []
    assert len(google.token_requests[-1]["code_verifier"]) >= 43


async def test_second_google_login_finds_the_same_account(client: Client, google: StandInOAuth) -> None:
    google.account = {"sub": f"g-{uuid.uuid4()}", "email": unique_email(), "email_verified": True}
    first = await oauth_login(client, "google")
    google.account["email"] = unique_email()  # the address changed at Google: the subject still matches
    second = await oauth_login(client, "google")

    one = (await me(client, session_cookie(first))).json()["user"]["id"]
    two = (await me(client, session_cookie(second))).json()["user"]["id"]
    assert one == two


async def test_google_links_to_an_account_with_the_same_verified_email(
    client: Client, google: StandInOAuth, mailbox: Mailbox
) -> None:
    user = await signup(client)
    token = await mailbox.token(user.email, "Confirm your email")
    assert (await client.post("/api/v1/auth/verify-email", json={"token": token})).status_code == 200
    google.account = {"sub": f"g-{uuid.uuid4()}", "email": user.email.upper(), "email_verified": True}

    response = await oauth_login(client, "google")

    assert (await me(client, session_cookie(response))).json()["user"]["id"] == user.id
    # the password still works too
    login = await client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 200


async def test_linking_an_unverified_signup_ends_its_password(client: Client, google: StandInOAuth) -> None:
    """Someone who signed up with another person's address (never proved) loses it to its owner."""
    squatter = await signup(client, verified=False)
    google.account = {"sub": f"g-{uuid.uuid4()}", "email": squatter.email, "email_verified": True}

    response = await oauth_login(client, "google")

    assert (await me(client, session_cookie(response))).json()["user"]["id"] == squatter.id
    assert (await squatter.get("/api/v1/auth/me")).status_code == 401
    login = await client.post("/api/v1/auth/login", json={"email": squatter.email, "password": PASSWORD})
    assert login.status_code == 401


async def test_an_unverified_provider_email_is_refused(client: Client, google: StandInOAuth) -> None:
    user = await signup(client)
    google.account = {"sub": f"g-{uuid.uuid4()}", "email": user.email, "email_verified": False}

    response = await oauth_login(client, "google")

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "set-cookie" not in response.headers or "datafast_session=" not in response.headers["set-cookie"]


async def test_x_login_uses_basic_client_auth_and_the_confirmed_email(
    client: Client, x: StandInOAuth
) -> None:
    email = unique_email()
    x.account = {"id": "12345", "email": email, "name": "Grace"}

    response = await oauth_login(client, "x")

    assert response.status_code == 302, response.text
    assert (await me(client, session_cookie(response))).json()["user"]["email"] == email
    assert "client_secret" not in x.token_requests[-1]
    assert x.errors == []


async def test_callback_with_a_wrong_or_reused_state_is_refused(client: Client, google: StandInOAuth) -> None:
    google.account = {"sub": f"g-{uuid.uuid4()}", "email": unique_email(), "email_verified": True}
    start = await client.get("/api/v1/auth/oauth/google/start", follow_redirects=False)
    async with httpx.AsyncClient() as browser:
        back = urlsplit((await browser.get(start.headers["location"])).headers["location"])
    code = parse_qs(back.query)["code"][0]

    forged = await client.get(
        f"/api/v1/auth/oauth/google/callback?code={code}&state=forged", follow_redirects=False
    )
    assert forged.status_code == 400

    done = await client.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert done.status_code == 302
    replay = await client.get(f"{back.path}?{back.query}", follow_redirects=False)
    assert replay.status_code == 400
    client.cookies.clear()


async def test_callback_from_another_browser_is_refused(client: Client, google: StandInOAuth) -> None:
    google.account = {"sub": f"g-{uuid.uuid4()}", "email": unique_email(), "email_verified": True}
    start = await client.get("/api/v1/auth/oauth/google/start", follow_redirects=False)
    client.cookies.clear()  # the state cookie is not in this "browser"
    async with httpx.AsyncClient() as browser:
        back = urlsplit((await browser.get(start.headers["location"])).headers["location"])

    response = await client.get(f"{back.path}?{back.query}", follow_redirects=False)

    assert response.status_code == 400


async def test_oauth_start_keeps_nothing_in_the_shared_cache(
    client: Client, app: Litestar, adapters: Adapters, settings: Settings, google: StandInOAuth
) -> None:
    """A flood of starts must not fill (and so evict) the cache other features rely on."""
    # The app's own cache: in-process in embedded mode, the shared Valkey in scaled mode.
    cache = app.state.adapters.cache if settings.mode == "embedded" else adapters.cache
    states = []
    for _ in range(5):
        start = await client.get("/api/v1/auth/oauth/google/start", follow_redirects=False)
        assert start.status_code == 302
        states.append(parse_qs(urlsplit(start.headers["location"]).query)["state"][0])
    client.cookies.clear()

    for state in states:
        assert await cache.get(f"oauth:{state}") is None


async def test_oauth_start_is_rate_limited_per_client_ip(client: Client, google: StandInOAuth) -> None:
    for _ in range(OAUTH_STARTS_PER_IP):
        response = await client.get("/api/v1/auth/oauth/google/start", follow_redirects=False)
        assert response.status_code == 302
    client.cookies.clear()

    refused = await client.get("/api/v1/auth/oauth/google/start", follow_redirects=False)

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) > 0
    assert "set-cookie" not in refused.headers


async def test_a_tampered_state_cookie_is_refused(client: Client, google: StandInOAuth) -> None:
    google.account = {"sub": f"g-{uuid.uuid4()}", "email": unique_email(), "email_verified": True}
    start = await client.get("/api/v1/auth/oauth/google/start", follow_redirects=False)
    sealed = client.cookies["datafast_oauth"]
    client.cookies.clear()
    client.cookies.set("datafast_oauth", sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB"))
    async with httpx.AsyncClient() as browser:
        back = urlsplit((await browser.get(start.headers["location"])).headers["location"])

    response = await client.get(f"{back.path}?{back.query}", follow_redirects=False)

    assert response.status_code == 400
    client.cookies.clear()


async def test_unconfigured_provider_is_404(client: Client) -> None:
    response = await client.get("/api/v1/auth/oauth/github/start", follow_redirects=False)

    assert response.status_code == 404


async def test_closed_sign_up_refuses_new_oauth_accounts(
    make_settings: SettingsFactory, mailbox: Mailbox, google: StandInOAuth
) -> None:
    settings = make_settings(SIGNUP_OPEN="false", **google.settings())
    google.account = {"sub": f"g-{uuid.uuid4()}", "email": unique_email(), "email_verified": True}
    async with AsyncTestClient(create_app(settings)) as client:
        response = await oauth_login(client, "google")

    assert response.status_code == 403

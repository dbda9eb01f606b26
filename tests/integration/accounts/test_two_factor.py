"""TOTP two-factor sign-in: enrolment, the login's second step, replay, recovery codes, disabling,
the per-user code limit, the operator's requirement for owners and OAuth logins, on both modes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.app import create_app
from datafast.db.models import TwoFactor
from datafast.settings import Settings
from tests.conftest import SettingsFactory
from tests.integration.accounts.conftest import (
    PASSWORD,
    Browser,
    Client,
    Mailbox,
    session_cookie,
    signup,
)
from tests.integration.accounts.oauth_server import RunningServer, StandInOAuth
from tests.integration.accounts.test_oauth import oauth_login
from tests.totp import Authenticator

TWO_FACTOR = "/api/v1/account/two-factor"


@pytest.fixture
def google() -> Iterator[StandInOAuth]:
    state = StandInOAuth("google")
    server = RunningServer(state)
    yield state
    server.stop()


@pytest.fixture
def settings(make_settings: SettingsFactory, mailbox: Mailbox, google: StandInOAuth) -> Settings:
    return make_settings(
        SMTP_URL=f"smtp://127.0.0.1:{mailbox.port}",  # type: ignore[attr-defined]
        **google.settings(),
    )


async def enrol(browser: Browser) -> tuple[Authenticator, list[str]]:
    """Turn two-factor sign-in on for ``browser``'s user: its authenticator and recovery codes."""
    started = await browser.post(TWO_FACTOR)
    assert started.status_code == 200, started.text
    app = Authenticator(started.json()["secret"])
    confirmed = await browser.post(f"{TWO_FACTOR}/confirm", json={"code": app.code()})
    assert confirmed.status_code == 200, confirmed.text
    codes: list[str] = confirmed.json()["recovery_codes"]
    return app, codes


async def password_step(client: Client, email: str) -> str:
    """Email and password of a two-factor user: a challenge, and no session."""
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    client.cookies.clear()
    assert response.status_code == 200, response.text
    assert response.json()["two_factor_required"] is True
    assert "datafast_session=" not in " ".join(response.headers.get_list("set-cookie"))
    challenge: str = response.json()["challenge"]
    return challenge


async def code_step(client: Client, challenge: str, code: str) -> httpx.Response:
    response = await client.post("/api/v1/auth/login/two-factor", json={"challenge": challenge, "code": code})
    client.cookies.clear()
    return response


async def me(client: Client, session: str) -> dict[str, Any]:
    response = await client.get("/api/v1/auth/me", headers={"Cookie": f"datafast_session={session}"})
    assert response.status_code == 200, response.text
    user: dict[str, Any] = response.json()["user"]
    return user


async def test_enrolment_is_pending_until_a_code_confirms_it(
    client: Client, db_session: AsyncSession
) -> None:
    user = await signup(client)
    assert (await user.get(TWO_FACTOR)).json() == {
        "enabled": False,
        "pending": False,
        "recovery_codes_left": 0,
        "required": False,
    }

    started = await user.post(TWO_FACTOR)

    assert started.status_code == 200, started.text
    body = started.json()
    assert body["qr_svg"].startswith("<svg")
    assert body["otpauth_uri"].startswith("otpauth://totp/DataFast:")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    assert (await user.get(TWO_FACTOR)).json()["pending"] is True
    assert (await me(client, user.session))["two_factor_enabled"] is False
    # The secret is stored encrypted, never as is.
    row = await db_session.scalar(select(TwoFactor).where(TwoFactor.user_id == uuid.UUID(user.id)))
    assert row is not None
    assert body["secret"] not in row.secret_encrypted

    app = Authenticator(body["secret"])
    wrong = await user.post(
        f"{TWO_FACTOR}/confirm", json={"code": "000000" if app.code() != "000000" else "111111"}
    )
    assert wrong.status_code == 400
    assert wrong.headers["content-type"] == "application/problem+json"
    assert (await user.get(TWO_FACTOR)).json()["enabled"] is False

    confirmed = await user.post(f"{TWO_FACTOR}/confirm", json={"code": app.reuse()})

    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert (await user.get(TWO_FACTOR)).json() == {
        "enabled": True,
        "pending": False,
        "recovery_codes_left": 10,
        "required": False,
    }
    assert (await me(client, user.session))["two_factor_enabled"] is True
    # A second enrolment would silently replace the app the user has: it must be turned off first.
    assert (await user.post(TWO_FACTOR)).status_code == 409


async def test_turning_it_on_signs_out_the_other_browsers(client: Client) -> None:
    user = await signup(client)
    other = await client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    client.cookies.clear()
    other_session = session_cookie(other)

    await enrol(user)

    gone = await client.get("/api/v1/auth/me", headers={"Cookie": f"datafast_session={other_session}"})
    assert gone.status_code == 401
    assert (await user.get("/api/v1/auth/me")).status_code == 200


async def test_password_login_then_a_code_signs_in(client: Client) -> None:
    user = await signup(client)
    app, _ = await enrol(user)

    challenge = await password_step(client, user.email)
    no_session = await client.get("/api/v1/account/two-factor")
    assert no_session.status_code == 401

    wrong = await code_step(client, challenge, "12345x")
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"

    response = await code_step(client, challenge, app.code())

    assert response.status_code == 200, response.text
    assert response.json()["user"]["two_factor_enabled"] is True
    assert (await me(client, session_cookie(response)))["email"] == user.email


async def test_a_code_is_refused_the_second_time(client: Client) -> None:
    user = await signup(client)
    app, _ = await enrol(user)
    code = app.code()
    assert (await code_step(client, await password_step(client, user.email), code)).status_code == 200

    replayed = await code_step(client, await password_step(client, user.email), code)

    assert replayed.status_code == 401
    assert "already used" in replayed.json()["detail"]
    # An older step than the last one used is refused too; a later one works.
    assert (await code_step(client, await password_step(client, user.email), app.code())).status_code == 200


async def test_a_recovery_code_signs_in_once(client: Client) -> None:
    user = await signup(client)
    _, codes = await enrol(user)

    # Dashes, spaces and case do not matter.
    typed = codes[0].replace("-", " ").upper()
    first = await code_step(client, await password_step(client, user.email), typed)
    again = await code_step(client, await password_step(client, user.email), codes[0])

    assert first.status_code == 200, first.text
    assert again.status_code == 401
    assert (await user.get(TWO_FACTOR)).json()["recovery_codes_left"] == 9


async def test_regenerated_recovery_codes_replace_the_old_ones(client: Client) -> None:
    user = await signup(client)
    app, old = await enrol(user)
    assert (await user.post(f"{TWO_FACTOR}/recovery-codes", json={"code": "999999"})).status_code == 400

    response = await user.post(f"{TWO_FACTOR}/recovery-codes", json={"code": app.code()})

    assert response.status_code == 200, response.text
    new = response.json()["recovery_codes"]
    assert len(new) == 10
    assert not set(new) & set(old)
    assert (await code_step(client, await password_step(client, user.email), old[1])).status_code == 401
    assert (await code_step(client, await password_step(client, user.email), new[1])).status_code == 200


async def test_disabling_needs_a_code_then_the_password_alone_signs_in(client: Client) -> None:
    user = await signup(client)
    app, codes = await enrol(user)

    assert (await user.delete(TWO_FACTOR, json={"code": "not a code"})).status_code == 400
    assert (await user.delete(TWO_FACTOR)).status_code == 400  # no body
    assert (await user.get(TWO_FACTOR)).json()["enabled"] is True

    response = await user.delete(TWO_FACTOR, json={"code": app.code()})

    assert response.status_code == 204, response.text
    assert (await user.get(TWO_FACTOR)).json()["enabled"] is False
    login = await client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    client.cookies.clear()
    assert login.status_code == 200
    assert login.json()["user"]["two_factor_enabled"] is False
    assert session_cookie(login)
    # The recovery codes went with it.
    assert (await user.delete(TWO_FACTOR, json={"code": codes[0]})).status_code == 409


async def test_a_recovery_code_can_disable_it(client: Client) -> None:
    user = await signup(client)
    _, codes = await enrol(user)

    assert (await user.delete(TWO_FACTOR, json={"code": codes[3]})).status_code == 204


async def test_wrong_codes_are_limited_per_user(client: Client) -> None:
    user = await signup(client)
    app, _ = await enrol(user)
    challenge = await password_step(client, user.email)
    for _ in range(5):
        assert (await code_step(client, challenge, "000000")).status_code == 401

    limited = await code_step(client, challenge, app.code())

    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    # The limit is the user's, whichever way the code comes in.
    assert (await user.delete(TWO_FACTOR, json={"code": app.code()})).status_code == 429


async def test_a_forged_or_foreign_challenge_is_refused(client: Client) -> None:
    user = await signup(client)
    app, _ = await enrol(user)
    challenge = await password_step(client, user.email)
    user_hex, expires, nonce, signature = challenge.split(".")
    other = await signup(client)

    for forged in (
        f"{uuid.UUID(other.id).hex}.{expires}.{nonce}.{signature}",  # someone else's id, same signature
        f"{user_hex}.{int(expires) + 3600}.{nonce}.{signature}",  # a longer life
        "garbage",
        f"{user_hex}.{expires}.{nonce}.{signature}".replace(signature[:4], "0000"),
    ):
        response = await code_step(client, forged, app.code())
        assert response.status_code == 401, forged
        app.last_step = (app.last_step or 0) - 1  # nothing was used: the same code stays available


async def test_the_operator_requires_it_of_site_owners(make_settings: SettingsFactory) -> None:
    settings = make_settings(REQUIRE_TWO_FACTOR_FOR_OWNERS="true")
    async with AsyncTestClient(create_app(settings)) as client:
        owner = await signup(client)
        # Not an owner yet: nothing is required.
        assert (await me(client, owner.session))["two_factor_required"] is False
        key = await owner.post("/api/v1/api-keys", json={"name": "ci"})
        assert key.status_code == 201, key.text
        site = await owner.create_site()
        viewer = await signup(client)

        me_now = await me(client, owner.session)
        refused = await owner.get("/api/v1/sites")
        by_key = await client.get(
            f"/api/v1/sites/{site['id']}", headers={"Authorization": f"Bearer {key.json()['key']}"}
        )
        patch = await owner.patch(f"/api/v1/sites/{site['id']}", json={"name": "x"})

        assert me_now["two_factor_required"] is True
        assert me_now["two_factor_enabled"] is False
        for response in (refused, by_key, patch):
            assert response.status_code == 403, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["two_factor_required"] is True
        # A user who owns no site is not concerned.
        assert (await viewer.get("/api/v1/sites")).status_code == 200

        status = await owner.get(TWO_FACTOR)
        assert status.status_code == 200
        assert status.json()["required"] is True
        await enrol(owner)

        assert (await owner.get("/api/v1/sites")).status_code == 200
        assert (await me(client, owner.session))["two_factor_required"] is False
        assert (await owner.post("/api/v1/auth/logout")).status_code == 204


async def test_without_the_operator_setting_owners_need_no_second_factor(client: Client) -> None:
    owner = await signup(client)
    await owner.create_site()

    assert (await owner.get("/api/v1/sites")).status_code == 200
    assert (await me(client, owner.session))["two_factor_required"] is False


async def test_an_oauth_login_of_a_two_factor_user_needs_the_code(
    client: Client, google: StandInOAuth
) -> None:
    google.account = {
        "sub": f"g-{uuid.uuid4()}",
        "email": f"g{uuid.uuid4().hex[:8]}@example.com",
        "email_verified": True,
    }
    first = await oauth_login(client, "google")
    assert first.headers["location"] == "http://localhost:8000/"
    session = session_cookie(first)
    csrf = (await client.get("/api/v1/auth/me", headers={"Cookie": f"datafast_session={session}"})).json()
    client.cookies.clear()
    user = Browser(
        client, google.account["email"], id=csrf["user"]["id"], session=session, csrf=csrf["csrf_token"]
    )
    app, _ = await enrol(user)

    second = await oauth_login(client, "google")

    assert second.status_code == 302, second.text
    location = urlsplit(second.headers["location"])
    assert location.path == "/login"
    assert location.fragment.startswith("two-factor=")
    assert "datafast_session=" not in " ".join(second.headers.get_list("set-cookie"))
    challenge = location.fragment.removeprefix("two-factor=")
    signed_in = await code_step(client, challenge, app.code())
    assert signed_in.status_code == 200, signed_in.text
    assert (await me(client, session_cookie(signed_in)))["id"] == user.id

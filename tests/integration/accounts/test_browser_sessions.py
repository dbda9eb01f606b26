"""Where an account is signed in: listed without tokens, and other browsers signed out one by one."""

from __future__ import annotations

import uuid

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.integration.accounts.conftest import login, signup

Client = AsyncTestClient[Litestar]


async def test_sessions_are_listed_and_another_browser_can_be_signed_out(client: Client) -> None:
    laptop = await signup(client)
    phone = await login(client, laptop.email)
    stranger = await signup(client)

    listed = (await laptop.get("/api/v1/account/sessions")).json()
    assert len(listed) == 2
    assert [s["current"] for s in listed].count(True) == 1
    assert all(set(s) == {"id", "created_at", "expires_at", "user_agent", "current"} for s in listed)
    mine = next(s["id"] for s in listed if s["current"])
    theirs = next(s["id"] for s in listed if not s["current"])

    own = await laptop.request("DELETE", f"/api/v1/account/sessions/{mine}")
    assert own.status_code == 400  # sign out instead
    assert (await stranger.request("DELETE", f"/api/v1/account/sessions/{theirs}")).status_code == 404
    assert (await laptop.request("DELETE", f"/api/v1/account/sessions/{uuid.uuid4()}")).status_code == 404
    assert (await phone.get("/api/v1/account")).status_code == 200

    assert (await laptop.request("DELETE", f"/api/v1/account/sessions/{theirs}")).status_code == 204
    assert (await phone.get("/api/v1/account")).status_code == 401
    assert [s["id"] for s in (await laptop.get("/api/v1/account/sessions")).json()] == [mine]

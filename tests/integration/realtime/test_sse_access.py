"""An open realtime stream ends once its access is gone: logout, a revoked API key, removal from
the site's team. The stream re-checks every ``REALTIME_RECHECK`` seconds (0.3 s here).

Real ``datafast serve`` processes (the stream is infinite), embedded and scaled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import free_port
from tests.integration.accounts.conftest import Mailbox
from tests.integration.realtime.sse import EventStream
from tests.integration.realtime.test_sse import add_site, open_stream, sign_up
from tests.integration.test_cli import Server, _env

RECHECK = 0.3


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port  # type: ignore[attr-defined]
    yield box
    controller.stop()


@pytest.fixture(params=["embedded", pytest.param("scaled", marks=pytest.mark.scaled)])
def live(request: pytest.FixtureRequest, tmp_path: Path, mailbox: Mailbox) -> Iterator[Server]:
    port = free_port()
    extra: dict[str, str] = {}
    if request.param == "scaled":
        extra = {
            "DATABASE_URL": request.getfixturevalue("postgres_url"),
            "VALKEY_URL": request.getfixturevalue("valkey_url"),
            "SECRET_KEY": "s" * 40,
            "MIGRATE_ON_START": "true",
        }
    server = Server(
        _env(
            DATA_DIR=str(tmp_path),
            BASE_URL=f"http://127.0.0.1:{port}",
            REALTIME_HEARTBEAT="0.2",
            REALTIME_RECHECK=str(RECHECK),
            SMTP_URL=f"smtp://127.0.0.1:{mailbox.port}",  # type: ignore[attr-defined]
            LOG_LEVEL="WARNING",
            **extra,
        ),
        tmp_path,
        port,
    )
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()


def _ends_within(stream: EventStream, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            stream.next()
        except AssertionError:  # "the stream ended"
            return True
    return False


def _csrf(client: httpx.Client) -> dict[str, str]:
    return {"x-csrf-token": client.cookies["datafast_csrf"]}


def _verify(client: httpx.Client, mailbox: Mailbox) -> None:
    """Open the mailed confirmation link (keys and invitations need a confirmed address)."""
    email = client.get("/api/v1/auth/me").json()["user"]["email"]
    token = asyncio.run(mailbox.token(email, "Confirm your email"))
    assert client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 200


def test_a_stream_ends_after_logout(live: Server) -> None:
    with sign_up(live.url) as client:
        site_id = add_site(client, "logout.example")
        with open_stream(live.url, client, site_id) as stream:
            # Several re-checks pass while the session holds: the stream stays open.
            assert not _ends_within(stream, RECHECK * 4)
            assert client.post("/api/v1/auth/logout", headers=_csrf(client)).status_code == 204
            assert _ends_within(stream, 5), "the stream kept going after logout"


def test_a_stream_ends_when_its_api_key_is_revoked(live: Server, mailbox: Mailbox) -> None:
    with sign_up(live.url) as client:
        _verify(client, mailbox)
        site_id = add_site(client, "key.example")
        made = client.post("/api/v1/api-keys", json={"name": "live"}, headers=_csrf(client))
        assert made.status_code == 201, made.text
        key, key_id = made.json()["key"], made.json()["api_key"]["id"]
        stream = EventStream(
            f"{live.url}/api/v1/sites/{site_id}/realtime", headers={"authorization": f"Bearer {key}"}
        )
        with stream:
            assert stream.response.status_code == 200
            assert not _ends_within(stream, RECHECK * 4)
            assert client.delete(f"/api/v1/api-keys/{key_id}", headers=_csrf(client)).status_code == 204
            assert _ends_within(stream, 5), "the stream kept going after its API key was revoked"


def test_a_stream_ends_when_its_user_is_removed_from_the_team(live: Server, mailbox: Mailbox) -> None:
    with sign_up(live.url) as owner, sign_up(live.url) as member:
        _verify(owner, mailbox)
        site_id = add_site(owner, "team.example")
        member_email = member.get("/api/v1/auth/me").json()["user"]["email"]
        invited = owner.post(
            f"/api/v1/sites/{site_id}/invitations",
            json={"email": member_email, "role": "viewer"},
            headers=_csrf(owner),
        )
        assert invited.status_code == 201, invited.text
        token = asyncio.run(mailbox.token(member_email, "You are invited"))
        accepted = member.post("/api/v1/invitations/accept", json={"token": token}, headers=_csrf(member))
        assert accepted.status_code == 200, accepted.text
        members = owner.get(f"/api/v1/sites/{site_id}/members").json()
        member_id = next(m["user_id"] for m in members if m["email"] == member_email)
        with open_stream(live.url, member, site_id) as stream:
            assert not _ends_within(stream, RECHECK * 4)
            removed = owner.delete(f"/api/v1/sites/{site_id}/members/{member_id}", headers=_csrf(owner))
            assert removed.status_code == 204
            assert _ends_within(stream, 5), "the stream kept going after removal from the team"
        # The browser's EventSource reconnects and is refused.
        again = member.get(f"/api/v1/sites/{site_id}/realtime")
        assert again.status_code == 404

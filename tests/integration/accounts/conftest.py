"""Fixtures for the accounts tests: a local SMTP server (aiosmtpd) receiving DataFast's mail,
and helpers acting as separate browsers (each with its own session cookie and CSRF token)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar
from litestar.testing import AsyncTestClient
from saq import Worker
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from datafast.domain.accounts.services import UserService
from datafast.settings import Settings
from tests.conftest import SettingsFactory, free_port

Client = AsyncTestClient[Litestar]
PASSWORD = "correct horse 1"


class Mailbox:
    """What the local SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content)
        message["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"

    async def wait_for(self, to: str, subject_part: str, timeout: float = 10) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.messages:
                if message["To"] == to and subject_part in message["Subject"]:
                    return message
            await asyncio.sleep(0.02)
        raise AssertionError(
            f"no mail to {to} about {subject_part!r}; got {[m['Subject'] for m in self.messages]}"
        )

    async def token(self, to: str, subject_part: str) -> str:
        message = await self.wait_for(to, subject_part)
        body = message.get_payload(decode=True)
        assert isinstance(body, bytes)
        match = re.search(r"token=([A-Za-z0-9_\-]+)", body.decode())
        assert match, body
        return match.group(1)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.port = controller.port  # type: ignore[attr-defined]
    yield mailbox
    controller.stop()


@pytest.fixture
async def client(app: Litestar, ingest_worker: Worker[Any] | None) -> AsyncIterator[Client]:
    """Scaled mode: with a `datafast worker` (mail is sent by its SAQ jobs)."""
    async with AsyncTestClient(app) as client:
        yield client


@pytest.fixture
def settings(make_settings: SettingsFactory, mailbox: Mailbox) -> Settings:
    return make_settings(
        SMTP_URL=f"smtp://127.0.0.1:{mailbox.port}",  # type: ignore[attr-defined]
        MAIL_FROM="DataFast <noreply@example.test>",
    )


def unique_email() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class Browser:
    """One signed-in browser: its cookie and CSRF token are sent explicitly on each request,
    so several users can share one test client."""

    client: Client
    email: str
    id: str = ""
    session: str = ""
    csrf: str = ""
    extra_headers: dict[str, str] = field(default_factory=dict)

    def headers(self, csrf: bool = True) -> dict[str, str]:
        headers = {"Cookie": f"datafast_session={self.session}", **self.extra_headers}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        return headers

    async def request(self, method: str, url: str, *, csrf: bool = True, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers(csrf), **kwargs.pop("headers", {})}
        try:
            return await self.client.request(method, url, headers=headers, **kwargs)
        finally:
            self.client.cookies.clear()

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def create_site(self, domain: str | None = None, **body: Any) -> dict[str, Any]:
        domain = domain or f"s{uuid.uuid4().hex[:10]}.example.com"
        response = await self.post("/api/v1/sites", json={"domain": domain, **body})
        assert response.status_code == 201, response.text
        site: dict[str, Any] = response.json()
        return site


def session_cookie(response: httpx.Response) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("datafast_session="):
            return header.split(";", 1)[0].split("=", 1)[1]
    raise AssertionError(f"no session cookie in {response.headers.get_list('set-cookie')}")


async def signup(
    client: Client,
    email: str | None = None,
    password: str = PASSWORD,
    *,
    verified: bool = True,
    settings: Settings | None = None,
) -> Browser:
    """A new account signed in; ``verified`` also confirms its address (API keys need that)."""
    email = email or unique_email()
    response = await client.post("/api/v1/auth/signup", json={"email": email, "password": password})
    client.cookies.clear()
    assert response.status_code == 201, response.text
    body = response.json()
    browser = Browser(
        client, email, id=body["user"]["id"], session=session_cookie(response), csrf=body["csrf_token"]
    )
    if verified:
        await verify(browser, settings)
    return browser


async def verify(browser: Browser, settings: Settings | None = None) -> None:
    """Confirm the address as an operator does (``datafast user verify``), in the app's database
    (``settings``: the app's, when the client wraps the app in something else). A plain engine:
    a config object per call would fill advanced-alchemy's process-wide registry of configs."""
    url = (settings or browser.client.app.state.settings).database_url
    engine = create_async_engine(url)
    try:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            assert await UserService(session=session).mark_verified(browser.email) is not None
            await session.commit()
    finally:
        await engine.dispose()


async def login(client: Client, email: str, password: str = PASSWORD, **kwargs: Any) -> Browser:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password}, **kwargs)
    client.cookies.clear()
    assert response.status_code == 200, response.text
    body = response.json()
    return Browser(
        client, email, id=body["user"]["id"], session=session_cookie(response), csrf=body["csrf_token"]
    )

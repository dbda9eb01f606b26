"""Fixtures for the mail-job tests: a local SMTP server (aiosmtpd) that can refuse the first
messages it is given (a temporary failure, 451), and the app sending to it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar
from litestar.testing import AsyncTestClient
from saq import Worker

from tests.conftest import free_port
from tests.integration.accounts.conftest import Mailbox


class FlakyMailbox(Mailbox):
    """Answers ``451`` (try again later) to the first ``failures`` messages, then accepts."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0
        self.attempts = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            return "451 4.3.0 Temporary failure, try again"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def mailbox() -> Iterator[FlakyMailbox]:
    mailbox = FlakyMailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.port = controller.port  # type: ignore[attr-defined]
    yield mailbox
    controller.stop()


@pytest.fixture
def env(env: dict[str, str], mailbox: FlakyMailbox) -> dict[str, str]:
    return {
        **env,
        "INGEST_FLUSH_INTERVAL": "0.05",
        "SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}",  # type: ignore[attr-defined]
        "MAIL_FROM": "DataFast <reports@example.test>",
        "BASE_URL": "http://datafast.test",
        "ALERT_WEBHOOK_HOSTS": "127.0.0.1",  # the chat stand-in (tests/…/conftest.py: ChatWebhook)
    }


@pytest.fixture
async def client(
    app: Litestar, ingest_worker: Worker[Any] | None
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app) as client:
        yield client


class ChatWebhook:
    """A local stand-in for a Slack/Discord incoming webhook: records each JSON body posted."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        chat = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                chat.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T0/B0/secret"

    async def wait_for(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.bodies) >= count:
                return self.bodies
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(self.bodies)} chat messages, expected {count}: {self.bodies}")


@pytest.fixture
def chat() -> Iterator[ChatWebhook]:
    chat = ChatWebhook()
    thread = threading.Thread(target=chat.server.serve_forever, daemon=True)
    thread.start()
    yield chat
    chat.server.shutdown()
    chat.server.server_close()

"""Fixtures for the mail-job tests: a local SMTP server (aiosmtpd) that can refuse the first
messages it is given (a temporary failure, 451), and the app sending to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
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
    }


@pytest.fixture
async def client(
    app: Litestar, ingest_worker: Worker[Any] | None
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app) as client:
        yield client

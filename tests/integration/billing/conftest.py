"""Fixtures for the hosted-mode billing tests: the app with BILLING=stripe pointed at a local
Stripe stand-in, a local SMTP server for its mail, and helpers driving an account through Stripe."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from litestar import Litestar
from litestar.testing import AsyncTestClient
from saq import Worker

from tests.conftest import free_port
from tests.integration.accounts.conftest import Browser, Mailbox, signup
from tests.integration.billing.stripe_api import (
    PLANS,
    SECRET_KEY,
    WEBHOOK_SECRET,
    StripeStandIn,
    event,
    signed,
    subscription,
)

Client = AsyncTestClient[Litestar]


@pytest.fixture
def stripe_api() -> Iterator[StripeStandIn]:
    with StripeStandIn() as standin:
        yield standin


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    mailbox.port = controller.port  # type: ignore[attr-defined]
    yield mailbox
    controller.stop()


@pytest.fixture
def env(env: dict[str, str], stripe_api: StripeStandIn, mailbox: Mailbox) -> dict[str, str]:
    return {
        **env,
        "INGEST_FLUSH_INTERVAL": "0.05",
        "BILLING": "stripe",
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": stripe_api.url,
        "BILLING_PLANS": json.dumps(PLANS),
        "SMTP_URL": f"smtp://127.0.0.1:{mailbox.port}",  # type: ignore[attr-defined]
        "MAIL_FROM": "DataFast <billing@example.test>",
    }


@pytest.fixture
async def client(app: Litestar, ingest_worker: Worker[Any] | None) -> AsyncIterator[Client]:
    async with AsyncTestClient(app) as client:
        yield client


class Account:
    """One signed-up owner, subscribed through Checkout to a Stripe customer of the stand-in."""

    def __init__(self, client: Client, owner: Browser) -> None:
        self.client, self.owner = client, owner
        self.customer = ""
        self.subscription = f"sub_{uuid.uuid4().hex[:14]}"

    async def checkout(self, plan: str = "growth") -> dict[str, Any]:
        response = await self.owner.post("/api/v1/billing/checkout", json={"plan": plan})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def billing(self) -> dict[str, Any]:
        response = await self.owner.get("/api/v1/billing")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def deliver(self, evt: dict[str, Any]) -> httpx.Response:
        body, headers = signed(evt)
        return await self.client.post("/webhooks/billing/stripe", content=body, headers=headers)

    def subscription_event(
        self, kind: str, price: str, status: str, created: int, period: tuple[int, int] | None = None
    ) -> dict[str, Any]:
        start, end = period or (created, created + 30 * 86400)
        obj = subscription(self.subscription, self.customer, price, status, start, end, self.owner.id)
        if kind.endswith("deleted"):
            obj["canceled_at"] = created
        return event(kind, obj, created)


async def subscribed_account(client: Client, stripe_api: StripeStandIn, plan: str = "growth") -> Account:
    """Signed up, through Checkout, with its Stripe customer (no events delivered yet)."""
    account = Account(client, await signup(client))
    await account.checkout(plan)
    account.customer = next(c for c in stripe_api.customers.values() if c["email"] == account.owner.email)[
        "id"
    ]
    return account


def now() -> int:
    return int(time.time())

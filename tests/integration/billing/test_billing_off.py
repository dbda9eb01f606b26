"""``BILLING=off`` (the default, self-hosting): nothing of billing shows, limits or refuses."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import CHROME_MAC
from tests.integration.accounts.conftest import signup
from tests.integration.billing.conftest import Client
from tests.integration.billing.stripe_api import StripeStandIn, event, signed


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith(("BILLING", "STRIPE_"))}


async def test_billing_off_has_no_billing_routes_and_no_limits(
    client: Client, stripe_api: StripeStandIn
) -> None:
    assert not client.app.state.settings.billing.enabled
    owner = await signup(client)

    assert (await owner.get("/api/v1/billing")).status_code == 404
    assert (await owner.post("/api/v1/billing/checkout", json={"plan": "starter"})).status_code == 404
    body, headers = signed(event("invoice.paid", {"customer": "cus_x"}, 1))
    assert (await client.post("/webhooks/billing/stripe", content=body, headers=headers)).status_code == 404
    sites = [await owner.create_site() for _ in range(4)]  # more than any plan of the hosted tests
    for index in range(3):
        invited = await owner.post(
            f"/api/v1/sites/{sites[0]['id']}/invitations",
            json={"email": f"m{index}{uuid.uuid4().hex[:6]}@example.com", "role": "viewer"},
        )
        assert invited.status_code == 201, invited.text
    tracked = await client.post(
        "/track",
        json={"website_id": sites[0]["id"], "page_url": f"https://{sites[0]['domain']}/"},
        headers={"user-agent": CHROME_MAC},
    )
    assert tracked.status_code == 202, tracked.text
    assert client.app.state.get("billing_gate") is None
    assert stripe_api.requests == []

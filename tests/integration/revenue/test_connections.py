"""Payment connections: the webhook URL to paste, the secret encrypted at rest, one per provider."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import PaymentConnection
from datafast.domain.revenue.sealing import SecretBox
from datafast.settings import Settings
from tests.integration.revenue.conftest import Shop
from tests.integration.revenue.standins import LemonSqueezy, Stripe


async def test_a_connection_gives_the_webhook_url_and_keeps_the_secret_encrypted(
    shop: Shop, settings: Settings, db_session: AsyncSession
) -> None:
    stripe = Stripe()
    connection = await shop.connect(stripe)

    assert connection["provider"] == "stripe"
    assert connection["webhook_url"] == f"{settings.base_url}/webhooks/stripe/{connection['id']}"
    assert "checkout.session.completed" in connection["events"]
    assert "secret" not in str(connection).lower().replace("webhook_secret", "")
    stored = await db_session.scalar(select(PaymentConnection).where(PaymentConnection.website_id == shop.id))
    assert stored is not None
    assert stripe.secret not in stored.secret_encrypted
    assert SecretBox(settings.secret_key).open(stored.secret_encrypted) == stripe.secret
    assert SecretBox("another secret key of at least 32 chars").open(stored.secret_encrypted) is None


async def test_connections_are_listed_unique_per_provider_and_deleted(shop: Shop) -> None:
    stripe = Stripe()
    connection = await shop.connect(stripe)
    await shop.connect(LemonSqueezy())
    base = f"/api/v1/sites/{shop.id}/revenue/connections"

    duplicate = await shop.owner.post(
        base, json={"provider": "stripe", "webhook_secret": "whsec_" + "o" * 32}
    )
    listed = await shop.owner.get(base)
    bad = await shop.owner.post(base, json={"provider": "paypal", "webhook_secret": "abcdefgh"})

    assert duplicate.status_code == 409
    assert [c["provider"] for c in listed.json()] == ["stripe", "lemonsqueezy"]
    assert bad.status_code == 400
    assert (await shop.owner.delete(f"{base}/{connection['id']}")).status_code == 204
    assert (await shop.owner.delete(f"{base}/{connection['id']}")).status_code == 404

    _, deliveries = stripe.payment(1000)
    assert (await shop.deliver(connection, deliveries[0])).status_code == 404  # disconnected
    assert await shop.stored_rows() == 0


@pytest.mark.parametrize(
    ("provider", "secret"),
    [
        ("lemonsqueezy", "abcdef"),  # Lemon Squeezy itself accepts 6 characters
        ("lemonsqueezy", "short-secret-15"),
        ("shopify", "0123456789"),
        ("stripe", "not-a-stripe-secret-but-long-enough"),
        ("stripe", "whsec_short"),
        ("polar", "whsec_" + "x" * 40),
        ("polar", "polar_whs_abc"),
    ],
)
async def test_a_weak_or_malformed_webhook_secret_is_refused_with_400(
    shop: Shop, provider: str, secret: str
) -> None:
    base = f"/api/v1/sites/{shop.id}/revenue/connections"

    response = await shop.owner.post(base, json={"provider": provider, "webhook_secret": secret})

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await shop.owner.get(base)).json() == []

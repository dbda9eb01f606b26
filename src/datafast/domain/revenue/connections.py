"""Payment connections in the config database, and the processed-delivery ledger.

A webhook secret is the only thing that stops anyone from posting payments to a site, so it
must look like the provider's own (:data:`SECRET_RULES`): Stripe's ``whsec_…`` and Polar's
``polar_whs_…`` with their random part, at least :data:`MIN_SECRET_LENGTH` characters for the
secrets a user chooses or copies (Lemon Squeezy's 6-40 character secret; Shopify's key). Anything
else is refused with 400 before it is stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import PaymentConnection, WebhookDelivery
from datafast.domain.revenue.providers.lemonsqueezy import SUBSCRIPTION_EVENTS as LEMON_SQUEEZY_SUBSCRIPTIONS
from datafast.domain.revenue.sealing import SecretBox
from datafast.errors import Conflict, InvalidInput, NotFound

__all__ = (
    "EVENTS",
    "MIN_SECRET_LENGTH",
    "SECRET_RULES",
    "check_webhook_secret",
    "create_connection",
    "delete_connection",
    "delivery_seen",
    "find_connection",
    "list_connections",
    "mark_delivered",
    "site_connection",
    "webhook_url",
)

EVENTS = {
    "stripe": [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "invoice.paid",
        "charge.refunded",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
    ],
    "lemonsqueezy": [
        "order_created",
        "order_refunded",
        "subscription_payment_success",
        "subscription_payment_refunded",
        *LEMON_SQUEEZY_SUBSCRIPTIONS,
    ],
    "polar": [
        "order.paid",
        "order.refunded",
        "subscription.created",
        "subscription.active",
        "subscription.updated",
        "subscription.canceled",
        "subscription.uncanceled",
        "subscription.revoked",
    ],
    "shopify": ["orders/paid", "refunds/create"],
    "paddle": [
        "transaction.completed",
        "adjustment.created",
        "adjustment.updated",
        "subscription.created",
        "subscription.updated",
        "subscription.activated",
        "subscription.trialing",
        "subscription.past_due",
        "subscription.paused",
        "subscription.resumed",
        "subscription.canceled",
    ],
}


MIN_SECRET_LENGTH = 16
"""Lemon Squeezy accepts 6-40 characters; 16 random characters are about 80+ bits."""

SECRET_RULES: dict[str, tuple[str, int]] = {
    # provider: (required prefix, minimum length of the whole secret)
    "stripe": ("whsec_", len("whsec_") + 24),  # whsec_ + 32 base64 characters in practice
    "polar": ("polar_whs_", len("polar_whs_") + 24),
    "lemonsqueezy": ("", MIN_SECRET_LENGTH),
    "shopify": ("", MIN_SECRET_LENGTH),  # the app's shpss_… secret or the 64-hex notifications key
    "paddle": ("pdl_ntfset_", len("pdl_ntfset_") + 24),  # the notification destination's secret key
}


def check_webhook_secret(provider: str, secret: str) -> str:
    """The secret, stripped, or :class:`InvalidInput` (400) saying what the provider's looks like."""
    secret = secret.strip()
    prefix, minimum = SECRET_RULES.get(provider, ("", MIN_SECRET_LENGTH))
    if prefix and not secret.startswith(prefix):
        raise InvalidInput(
            f"A {provider} webhook secret starts with {prefix}: copy it from {provider}'s dashboard"
        )
    if len(secret) < minimum:
        raise InvalidInput(
            f"This {provider} webhook secret is too short: use at least {minimum} characters"
            + (" (a random one)" if not prefix else f" (the whole {prefix}… value)")
        )
    return secret


def webhook_url(base_url: str, connection: PaymentConnection) -> str:
    return f"{base_url.rstrip('/')}/webhooks/{connection.provider}/{connection.id}"


async def list_connections(db: AsyncSession, website_id: uuid.UUID) -> Sequence[PaymentConnection]:
    statement = (
        select(PaymentConnection)
        .where(PaymentConnection.website_id == website_id)
        .order_by(PaymentConnection.created_at)
    )
    return (await db.scalars(statement)).all()


async def create_connection(
    db: AsyncSession, box: SecretBox, website_id: uuid.UUID, provider: str, secret: str
) -> PaymentConnection:
    secret = check_webhook_secret(provider, secret)
    existing = await db.scalar(
        select(PaymentConnection.id).where(
            PaymentConnection.website_id == website_id, PaymentConnection.provider == provider
        )
    )
    if existing is not None:
        raise Conflict(f"This site is already connected to {provider}: delete that connection first")
    connection = PaymentConnection(
        website_id=website_id, provider=provider, secret_encrypted=box.seal(secret)
    )
    db.add(connection)
    await db.flush()
    return connection


async def delete_connection(db: AsyncSession, website_id: uuid.UUID, connection_id: uuid.UUID) -> None:
    result = await db.execute(
        delete(PaymentConnection).where(
            PaymentConnection.id == connection_id, PaymentConnection.website_id == website_id
        )
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound("No such connection")


async def site_connection(
    db: AsyncSession, website_id: uuid.UUID, connection_id: uuid.UUID
) -> PaymentConnection:
    connection = await db.get(PaymentConnection, connection_id)
    if connection is None or connection.website_id != website_id:
        raise NotFound("No such connection")
    return connection


async def find_connection(db: AsyncSession, provider: str, connection_id: uuid.UUID) -> PaymentConnection:
    connection = await db.get(PaymentConnection, connection_id)
    if connection is None or connection.provider != provider:
        raise NotFound("No such payment connection")
    return connection


async def delivery_seen(db: AsyncSession, connection_id: uuid.UUID, delivery_id: str) -> bool:
    found = await db.scalar(
        select(WebhookDelivery.id).where(
            WebhookDelivery.connection_id == connection_id, WebhookDelivery.delivery_id == delivery_id[:128]
        )
    )
    return found is not None


async def mark_delivered(db: AsyncSession, connection_id: uuid.UUID, delivery_id: str) -> bool:
    """Record the delivery; False when a concurrent request recorded it first."""
    try:
        async with db.begin_nested():
            db.add(WebhookDelivery(connection_id=connection_id, delivery_id=delivery_id[:128]))
    except IntegrityError:
        return False
    return True

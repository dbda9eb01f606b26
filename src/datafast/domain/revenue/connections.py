"""Payment connections in the config database, and the processed-delivery ledger."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import PaymentConnection, WebhookDelivery
from datafast.domain.revenue.sealing import SecretBox
from datafast.errors import Conflict, NotFound

__all__ = (
    "EVENTS",
    "create_connection",
    "delete_connection",
    "delivery_seen",
    "find_connection",
    "list_connections",
    "mark_delivered",
    "webhook_url",
)

EVENTS = {
    "stripe": [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "invoice.paid",
        "charge.refunded",
    ],
    "lemonsqueezy": [
        "order_created",
        "order_refunded",
        "subscription_payment_success",
        "subscription_payment_refunded",
    ],
    "polar": ["order.paid", "order.refunded"],
    "shopify": ["orders/paid", "refunds/create"],
}


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
    existing = await db.scalar(
        select(PaymentConnection.id).where(
            PaymentConnection.website_id == website_id, PaymentConnection.provider == provider
        )
    )
    if existing is not None:
        raise Conflict(f"This site is already connected to {provider}: delete that connection first")
    connection = PaymentConnection(
        website_id=website_id, provider=provider, secret_encrypted=box.seal(secret.strip())
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

"""Receiving a provider's webhook: find the connection, verify, de-duplicate, record.

The signature is checked on the raw body before anything is parsed. A delivery already
processed (same delivery id on the same connection) is answered 200 and changes nothing;
a payment seen through another event or delivery is de-duplicated by its refs
(:class:`~datafast.domain.revenue.service.PaymentService`). Work is a few indexed lookups and
one insert, well inside the providers' timeouts (Polar: 2 s).
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Website
from datafast.domain.revenue import connections
from datafast.domain.revenue.providers import PROVIDERS, BadSignature
from datafast.domain.revenue.schemas import WebhookReceived
from datafast.domain.revenue.sealing import SecretBox
from datafast.domain.revenue.service import PaymentService
from datafast.errors import InvalidInput, NotFound
from datafast.log import get_logger

__all__ = ("receive_webhook",)

log = get_logger(__name__)


async def receive_webhook(
    db: AsyncSession,
    payments: PaymentService,
    box: SecretBox,
    provider_name: str,
    connection_id: uuid.UUID,
    body: bytes,
    headers: dict[str, str],
) -> WebhookReceived:
    provider = PROVIDERS.get(provider_name)
    if provider is None:
        raise NotFound("No such payment provider")
    connection = await connections.find_connection(db, provider_name, connection_id)
    secret = box.open(connection.secret_encrypted)
    if secret is None:
        log.error("webhook secret unreadable (SECRET_KEY changed?)", connection=str(connection.id))
        raise InvalidInput("This connection's secret cannot be read: set the webhook secret again")
    try:
        verified = provider.verify(body, headers, secret, time.time())
    except BadSignature as exc:
        log.warning("webhook refused", provider=provider_name, connection=str(connection.id), reason=str(exc))
        raise InvalidInput(f"Webhook refused: {exc}") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a signed but unexpected payload
        raise InvalidInput(f"Webhook payload not understood: {exc}") from None
    if await connections.delivery_seen(db, connection.id, verified.delivery_id):
        return WebhookReceived(received=True, duplicate=True, stored=0, event=verified.event)
    website = await db.get(Website, connection.website_id)
    if website is None:  # pragma: no cover - connections are deleted with their site
        raise NotFound("No such payment connection")
    outcome = await payments.record(website.id, website.currency.upper(), provider_name, verified.items)
    if verified.subscriptions:
        outcome.stored += await payments.record_subscriptions(
            website.id, website.currency.upper(), provider_name, verified.subscriptions
        )
    await connections.mark_delivered(db, connection.id, verified.delivery_id)
    log.info(
        "webhook received",
        provider=provider_name,
        webhook_event=verified.event,
        stored=outcome.stored,
        duplicates=outcome.duplicates,
    )
    return WebhookReceived(received=True, duplicate=False, stored=outcome.stored, event=verified.event)

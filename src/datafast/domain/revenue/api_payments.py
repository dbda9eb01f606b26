"""``POST /api/v1/payments``: payments from providers without a webhook, or from your own server."""

from __future__ import annotations

from datetime import UTC, datetime

from datafast.db.models import Website
from datafast.domain.revenue.currency import to_minor
from datafast.domain.revenue.providers import Incoming
from datafast.domain.revenue.schemas import PaymentCreate, PaymentRecorded
from datafast.domain.revenue.service import PaymentService
from datafast.errors import InvalidInput

__all__ = ("PROVIDER", "record_api_payment")

PROVIDER = "api"


async def record_api_payment(
    payments: PaymentService, website: Website, data: PaymentCreate
) -> PaymentRecorded:
    currency = data.currency.upper()
    try:
        amount = to_minor(data.amount, currency)
    except ValueError:
        raise InvalidInput(
            "amount must be a number in major units, below a trillion",
            extra={"errors": [{"key": "amount", "message": "not a number, or too large"}]},
        ) from None
    if amount <= 0:
        raise InvalidInput(
            "amount must be positive (send refunds with refund: true)",
            extra={"errors": [{"key": "amount", "message": "must be positive"}]},
        )
    at = data.timestamp or datetime.now(UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    key = f"tx:{data.transaction_id}"
    item = Incoming(
        kind="refund" if data.refund else "payment",
        key=key,
        timestamp=at.astimezone(UTC),
        amount=amount,
        currency=currency,
        transaction_id=data.transaction_id,
        refs=[key],
        refund_of=[f"tx:{data.refunded_transaction_id}"] if data.refunded_transaction_id else [],
        is_renewal=data.renewal,
        subscription_id=data.subscription_id or "",
        visitor_id=(data.visitor_id or "").strip(),
        session_id=(data.session_id or "").strip(),
        email=data.email or "",
    )
    outcome = await payments.record(website.id, website.currency.upper(), PROVIDER, [item])
    stored = outcome.stored + outcome.updated > 0
    return PaymentRecorded(transaction_id=data.transaction_id, stored=stored, duplicate=not stored)

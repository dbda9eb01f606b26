"""Request and response bodies of the revenue routes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

__all__ = (
    "ConnectionCreate",
    "ConnectionRead",
    "PaymentCreate",
    "PaymentRecorded",
    "WebhookReceived",
)

ProviderName = Literal["stripe", "lemonsqueezy", "polar", "shopify", "paddle"]


class ConnectionCreate(msgspec.Struct, forbid_unknown_fields=True):
    provider: ProviderName
    webhook_secret: Annotated[str, Meta(min_length=16, max_length=200)]
    """Stripe ``whsec_…``, Polar ``polar_whs_…``, Lemon Squeezy's signing secret, Shopify's app secret,
    Paddle's ``pdl_ntfset_…`` secret key."""


class ConnectionRead(msgspec.Struct):
    id: uuid.UUID
    provider: str
    webhook_url: str
    """Paste this into the provider's webhook settings."""
    events: list[str]
    """The events to subscribe the webhook to."""
    created_at: datetime
    history: dict[str, Any] | None = None
    """The last history import (``POST …/history``): status, days, progress from 0 to 1, counts, error."""


class HistoryRequest(msgspec.Struct, forbid_unknown_fields=True):
    api_key: Annotated[str, Meta(min_length=8, max_length=500)]
    """A Stripe restricted key with read access to Checkout Sessions, invoices, charges and
    subscriptions (``rk_…``); kept encrypted on the connection."""
    days: Annotated[int, Meta(ge=1, le=730)] = 90


class WebhookReceived(msgspec.Struct):
    received: bool
    duplicate: bool
    stored: int
    event: str


class PaymentCreate(msgspec.Struct, forbid_unknown_fields=True):
    website_id: uuid.UUID
    amount: Annotated[str, Meta(min_length=1, max_length=32)] | float | int
    """In major units (``"19.99"``); stored in the currency's minor units."""
    currency: Annotated[str, Meta(pattern=r"^[A-Za-z]{3}$")]
    transaction_id: Annotated[str, Meta(min_length=1, max_length=200)]
    """Your id for this payment: sending it again stores nothing new."""
    visitor_id: Annotated[str, Meta(max_length=64)] | None = None
    session_id: Annotated[str, Meta(max_length=64)] | None = None
    email: Annotated[str, Meta(max_length=320)] | None = None
    renewal: bool = False
    refund: bool = False
    refunded_transaction_id: Annotated[str, Meta(max_length=200)] | None = None
    """For a refund: the payment it gives money back for (credited to the same source)."""
    subscription_id: Annotated[str, Meta(max_length=200)] | None = None
    """Renewals with the same subscription id inherit the first payment's visitor."""
    timestamp: datetime | None = None


class PaymentRecorded(msgspec.Struct):
    transaction_id: str
    stored: bool
    duplicate: bool

"""Payment providers: each checks a webhook's signature on the raw body and reads its payments."""

from __future__ import annotations

from datafast.domain.revenue.providers._base import (
    BadSignature,
    Incoming,
    Provider,
    SubscriptionState,
    Verified,
)
from datafast.domain.revenue.providers.lemonsqueezy import LemonSqueezyProvider
from datafast.domain.revenue.providers.paddle import PaddleProvider
from datafast.domain.revenue.providers.polar import PolarProvider
from datafast.domain.revenue.providers.shopify import ShopifyProvider
from datafast.domain.revenue.providers.stripe import StripeProvider

__all__ = ("PROVIDERS", "BadSignature", "Incoming", "Provider", "SubscriptionState", "Verified")

PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (StripeProvider(), LemonSqueezyProvider(), PolarProvider(), ShopifyProvider(), PaddleProvider())
}

"""Which money a site trusts: tracker (client-side) revenue is unverified.

Anyone who knows a site's public id can ``POST /track`` a purchase of any amount, so revenue
the tracker reports is a claim, not money received. Provider webhooks (signature checked) and
the Payments API (an API key that may write to the site) are verified sources. A site setting,
``count_client_revenue``, decides whether tracker revenue counts in money metrics:

- ``auto`` (default): only while the site has no verified source — no payment provider
  connected and no payment stored (from a webhook or the Payments API). Connecting Stripe, or
  recording one payment through the API, turns it off from then on (for every date range).
- ``always``: tracker revenue counts (sites that only track purchases in the browser).
- ``never``: it never counts.

Whenever it counts, one tracker event counts for at most ``client_revenue_cap`` whole units of
the site's currency (default :data:`DEFAULT_CLIENT_REVENUE_CAP`), so one forged event cannot
move the dashboard by a million. The rule itself is applied in the query layer, in one place:
the ``conversions`` CTE of :mod:`datafast.domain.analytics.conversions` (bound parameters).
"""

from __future__ import annotations

from typing import Literal, get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import PaymentConnection, Website
from datafast.domain.analytics.conversions import ALWAYS, NEVER, UNLESS_VERIFIED, ClientRevenue

__all__ = (
    "CLIENT_REVENUE_MODES",
    "DEFAULT_CLIENT_REVENUE_CAP",
    "MAX_CLIENT_REVENUE_CAP",
    "TRACKER_REVENUE_SCALE",
    "ClientRevenueMode",
    "client_revenue",
)

ClientRevenueMode = Literal["auto", "always", "never"]
CLIENT_REVENUE_MODES: tuple[str, ...] = get_args(ClientRevenueMode)
DEFAULT_CLIENT_REVENUE_CAP = 10_000
"""Whole units of the site's currency (10,000 USD, EUR…): above any one checkout of most sites."""
MAX_CLIENT_REVENUE_CAP = 1_000_000_000
TRACKER_REVENUE_SCALE = 100
"""The tracker's amount is stored times 100 (``events.revenue``, see ingest), whatever the currency."""


async def client_revenue(db: AsyncSession, website: Website) -> ClientRevenue:
    """The site's policy for tracker revenue, as the money queries bind it."""
    cap = max(0, website.client_revenue_cap) * TRACKER_REVENUE_SCALE
    mode = website.count_client_revenue
    if mode == "always":
        return ClientRevenue(ALWAYS, cap)
    if mode == "never":
        return ClientRevenue(NEVER, cap)
    # auto: a connected provider is a verified source even before its first webhook; stored
    # payments (webhooks, the Payments API) are checked by the query itself.
    connected = await db.scalar(
        select(PaymentConnection.id).where(PaymentConnection.website_id == website.id).limit(1)
    )
    return ClientRevenue(NEVER if connected is not None else UNLESS_VERIFIED, cap)

"""Stripe Checkout (subscribe) and the Customer Portal (change plan, card, cancel), created with the
official ``stripe`` package against ``STRIPE_API_BASE`` (Stripe itself, or a test stand-in).

The Stripe customer is made on the first checkout and kept on the account, so every later
webhook finds the account by its customer id, whatever order the events arrive in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import BillingAccount, User
from datafast.errors import InvalidInput, ServiceUnavailable
from datafast.log import get_logger
from datafast.settings import BillingSettings

__all__ = ("checkout_url", "portal_url")

log = get_logger(__name__)


@asynccontextmanager
async def _client(billing: BillingSettings) -> AsyncIterator[stripe.StripeClient]:
    http = stripe.HTTPXClient()
    client = stripe.StripeClient(
        billing.stripe_secret_key,
        base_addresses={"api": billing.stripe_api_base},
        http_client=http,
        max_network_retries=2,
    )
    try:
        yield client
    except stripe.StripeError as exc:
        log.error("stripe request failed", error=str(exc))
        raise ServiceUnavailable("The payment provider did not answer as expected; retry shortly") from exc
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]


async def checkout_url(
    db: AsyncSession,
    billing: BillingSettings,
    user: User,
    account: BillingAccount,
    plan_name: str,
    interval: str,
    base_url: str,
) -> str:
    """A Checkout Session subscribing the account to ``plan_name`` billed ``interval``ly."""
    plan = billing.plan(plan_name)
    if plan is None:
        raise InvalidInput(f"No plan named {plan_name!r}")
    price = plan.monthly_price if interval == "month" else plan.yearly_price
    if interval not in ("month", "year") or not price:
        raise InvalidInput(f"Plan {plan.name!r} is not billed per {interval}")
    async with _client(billing) as client:
        if account.stripe_customer_id is None:
            customer = await client.v1.customers.create_async(
                {"email": user.email, "metadata": {"datafast_user_id": str(user.id)}},
                {"idempotency_key": f"datafast-customer-{user.id}"},
            )
            account.stripe_customer_id = customer.id
            await db.flush()
        session = await client.v1.checkout.sessions.create_async(
            {
                "mode": "subscription",
                "customer": account.stripe_customer_id,
                "client_reference_id": str(user.id),
                "line_items": [{"price": price, "quantity": 1}],
                "subscription_data": {"metadata": {"datafast_user_id": str(user.id)}},
                "metadata": {"datafast_user_id": str(user.id)},
                "success_url": f"{base_url}/settings/billing?checkout=done",
                "cancel_url": f"{base_url}/settings/billing",
            }
        )
    if not session.url:
        raise ServiceUnavailable("The payment provider gave no checkout page; retry shortly")
    return session.url


async def portal_url(billing: BillingSettings, account: BillingAccount, base_url: str) -> str:
    if account.stripe_customer_id is None:
        raise InvalidInput("Subscribe to a plan first: there is no billing to manage yet")
    async with _client(billing) as client:
        session = await client.v1.billing_portal.sessions.create_async(
            {"customer": account.stripe_customer_id, "return_url": f"{base_url}/settings/billing"}
        )
    return session.url

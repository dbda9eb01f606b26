"""Usage counted from the rollups, the over-allowance grace (events keep arriving), seats, and the
402 problem at /track for an account unpaid past its grace."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from datafast.db.models import BillingAccount
from tests.helpers import CHROME_MAC, wait_for_rows
from tests.integration.accounts.conftest import Browser, signup
from tests.integration.billing.conftest import Client, now, subscribed_account
from tests.integration.billing.stripe_api import StripeStandIn, event, invoice

DAY = 86400


async def _track(client: Client, site: dict[str, Any], count: int) -> int:
    events = [
        {"website_id": site["id"], "page_url": f"https://{site['domain']}/p{i}", "visitor_id": f"v{i % 7}"}
        for i in range(count)
    ]
    response = await client.post("/track", json=events, headers={"user-agent": CHROME_MAC})
    return response.status_code


async def _usage(owner: Browser, expected: int, timeout: float = 10) -> dict[str, Any]:
    """The billing overview once its usage reaches ``expected`` (the rollups' views land just after
    the raw rows), or the last one seen."""
    deadline = time.monotonic() + timeout
    while True:
        billing: dict[str, Any] = (await owner.get("/api/v1/billing")).json()
        if billing["usage"]["events"] >= expected or time.monotonic() > deadline:
            return billing
        await asyncio.sleep(0.05)


async def _shift_over_allowance(client: Client, user_id: str, days: int) -> None:
    """The allowance was passed ``days`` ago, in a period that started the day before (time moves on)."""
    engine = create_async_engine(client.app.state.settings.database_url)
    try:
        async with AsyncSession(engine) as session:
            await session.execute(
                update(BillingAccount)
                .where(BillingAccount.user_id == uuid.UUID(user_id))
                .values(
                    over_allowance_since=datetime.now(UTC) - timedelta(days=days),
                    current_period_start=datetime.now(UTC) - timedelta(days=days + 1),
                )
            )
            await session.commit()
    finally:
        await engine.dispose()


async def test_usage_bar_counts_the_events_of_the_owners_sites_and_over_the_allowance_keeps_accepting(
    client: Client,
) -> None:
    owner = await signup(client)
    site = await owner.create_site()
    store = client.app.state.adapters.event_store

    assert await _track(client, site, 60) == 202
    await wait_for_rows(store, site["id"], 60)
    usage = (await _usage(owner, 60))["usage"]
    assert (usage["events"], usage["allowance"], usage["percent"], usage["sites"]) == (60, 100, 60, 1)

    assert await _track(client, site, 70) == 202  # 130 of 100: over, still accepted
    await wait_for_rows(store, site["id"], 130)
    billing = await _usage(owner, 130)
    assert (billing["usage"]["events"], billing["usage"]["percent"]) == (130, 130)
    assert billing["over_allowance_since"] is not None
    assert billing["upgrade_required"] is False
    assert "upgrade" in billing["notice"]

    await _shift_over_allowance(client, owner.id, days=8)  # past the 7-day grace
    billing = (await owner.get("/api/v1/billing")).json()
    assert billing["upgrade_required"] is True
    assert billing["accepting_events"] is True
    assert await _track(client, site, 5) == 202  # data keeps arriving
    rows = await wait_for_rows(store, site["id"], 135)
    assert len(rows) == 135


async def test_an_unpaid_account_past_grace_gets_402_at_track_and_nothing_else_breaks(
    client: Client, stripe_api: StripeStandIn
) -> None:
    account = await subscribed_account(client, stripe_api)
    site = await account.owner.create_site()
    t = now()
    await account.deliver(
        account.subscription_event("customer.subscription.created", "price_growth_m", "active", t - 9 * DAY)
    )
    assert await _track(client, site, 1) == 202

    failed = event(
        "invoice.payment_failed", invoice("in_9", account.customer, account.subscription, "open"), t - 8 * DAY
    )
    assert (await account.deliver(failed)).status_code == 200

    refused = await client.post(
        "/track",
        json={"website_id": site["id"], "page_url": f"https://{site['domain']}/"},
        headers={"user-agent": CHROME_MAC},
    )
    assert refused.status_code == 402
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["status"] == 402
    assert "unpaid" in problem["detail"]
    billing = await account.billing()
    assert (billing["status"], billing["accepting_events"]) == ("past_due", False)
    # The dashboard and the API still work.
    assert (await account.owner.get(f"/api/v1/sites/{site['id']}")).status_code == 200
    assert (await account.owner.get("/api/v1/sites")).status_code == 200

    paid = event("invoice.paid", invoice("in_9", account.customer, account.subscription, "paid"), t - 60)
    assert (await account.deliver(paid)).status_code == 200
    assert await _track(client, site, 1) == 202


async def test_within_grace_an_unpaid_account_still_sends_events(
    client: Client, stripe_api: StripeStandIn
) -> None:
    account = await subscribed_account(client, stripe_api)
    site = await account.owner.create_site()
    t = now()
    await account.deliver(
        account.subscription_event("customer.subscription.created", "price_growth_m", "active", t - 100)
    )
    await account.deliver(
        event(
            "invoice.payment_failed",
            invoice("in_g", account.customer, account.subscription, "open"),
            t - 6 * DAY,
        )
    )
    assert await _track(client, site, 1) == 202


async def test_seats_are_limited_by_the_owners_plan(client: Client) -> None:
    owner = await signup(client)  # trial: the starter plan, one seat besides the owner
    site = await owner.create_site()
    first = await owner.post(
        f"/api/v1/sites/{site['id']}/invitations", json={"email": "a@example.com", "role": "viewer"}
    )
    assert first.status_code == 201, first.text
    second = await owner.post(
        f"/api/v1/sites/{site['id']}/invitations", json={"email": "b@example.com", "role": "viewer"}
    )
    assert second.status_code == 402
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["limit"] == "seats"
    # The same person again (a re-sent invitation) needs no new seat.
    again = await owner.post(
        f"/api/v1/sites/{site['id']}/invitations", json={"email": "A@example.com", "role": "admin"}
    )
    assert again.status_code == 201, again.text

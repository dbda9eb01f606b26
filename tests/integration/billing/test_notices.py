"""The hourly billing notices: trial ending soon (once), and 80% / 100% of the allowance (once
each per period), queued as mail jobs and received by the local SMTP server."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from datafast.db.config import sqlalchemy_config
from datafast.db.models import BillingAccount
from datafast.domain.billing.notices import BILLING_NOTICES
from datafast.domain.billing.usage import events_in_period
from datafast.lib.adapters import Adapters
from tests.helpers import CHROME_MAC
from tests.integration.accounts.conftest import Mailbox, signup
from tests.integration.billing.conftest import Client
from tests.integration.billing.test_quotas import _usage


async def _notices(adapters: Adapters) -> list[str]:
    engine = sqlalchemy_config(adapters.settings).get_engine()
    adapters.job_context["engine"] = engine  # embedded: what the app gives in-process jobs
    try:
        result: list[str] = await adapters.queue.apply(BILLING_NOTICES, timeout=60)
        return result
    finally:
        await engine.dispose()


async def _rolled_up(adapters: Adapters, site_id: str, expected: int, timeout: float = 10) -> None:
    """Until the hourly rollup holds ``expected`` events of the site (its view lands just after the rows)."""
    deadline = time.monotonic() + timeout
    now = datetime.now(UTC)
    while True:
        count = await events_in_period(
            adapters.event_store, [uuid.UUID(site_id)], now - timedelta(days=1), now + timedelta(hours=1)
        )
        if count >= expected or time.monotonic() > deadline:
            assert count == expected
            return
        await asyncio.sleep(0.05)


def _mine(queued: list[str], email: str) -> list[str]:
    return [q.split(" ", 1)[1] for q in queued if q.startswith(email + " ")]


async def test_usage_mails_at_80_and_100_percent_once_each(
    client: Client, adapters: Adapters, mailbox: Mailbox
) -> None:
    owner = await signup(client)
    site = await owner.create_site()

    async def track(count: int) -> None:
        events = [
            {"website_id": site["id"], "page_url": f"https://{site['domain']}/{uuid.uuid4().hex}"}
            for _ in range(count)
        ]
        response = await client.post("/track", json=events, headers={"user-agent": CHROME_MAC})
        assert response.status_code == 202, response.text

    await track(79)
    await _usage(owner, 79)
    assert _mine(await _notices(adapters), owner.email) == []
    await track(1)
    await _usage(owner, 80)
    assert _mine(await _notices(adapters), owner.email) == ["usage_80"]
    assert _mine(await _notices(adapters), owner.email) == []
    await track(20)
    await _usage(owner, 100)
    assert _mine(await _notices(adapters), owner.email) == ["usage_100"]
    assert _mine(await _notices(adapters), owner.email) == []
    await track(1)  # over the allowance: the grace starts now, whether or not the owner looks
    await _rolled_up(adapters, site["id"], 101)
    assert _mine(await _notices(adapters), owner.email) == []
    engine = create_async_engine(client.app.state.settings.database_url)
    try:
        async with AsyncSession(engine) as session:
            noted = await session.scalar(
                select(BillingAccount.over_allowance_since).where(
                    BillingAccount.user_id == uuid.UUID(owner.id)
                )
            )
    finally:
        await engine.dispose()
    assert noted is not None  # by the job, before any look at the billing page
    await mailbox.wait_for(owner.email, "used 80%")
    await mailbox.wait_for(owner.email, "used 100%")


async def test_trial_ending_mail_is_sent_once_three_days_before(
    client: Client, adapters: Adapters, mailbox: Mailbox
) -> None:
    owner = await signup(client)
    assert _mine(await _notices(adapters), owner.email) == []  # 14 days left
    engine = create_async_engine(client.app.state.settings.database_url)
    try:
        async with AsyncSession(engine) as session:
            await session.execute(
                update(BillingAccount)
                .where(BillingAccount.user_id == uuid.UUID(owner.id))
                .values(trial_ends_at=datetime.now(UTC) + timedelta(days=2, hours=23))
            )
            await session.commit()
    finally:
        await engine.dispose()

    assert _mine(await _notices(adapters), owner.email) == ["trial_ending"]
    assert _mine(await _notices(adapters), owner.email) == []
    message = await mailbox.wait_for(owner.email, "trial ends soon")
    assert "/settings/billing" in str(message.get_payload(decode=True))

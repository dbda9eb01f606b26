"""A new site's first-run checklist, each step ticked from what is really stored: the script
installed (a pageview arrived), a first goal or custom event, a payment provider connected, a
first payment. The dashboard shows it until every step is done."""

from __future__ import annotations

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import PaymentConnection, Website
from datafast.lib.eventstore import EventStore

__all__ = ("Onboarding", "OnboardingStep", "onboarding")


class OnboardingStep(msgspec.Struct):
    key: str
    title: str
    done: bool


class Onboarding(msgspec.Struct):
    steps: list[OnboardingStep]
    complete: bool


# Each an existence check that stops at the first row (a big site never scans its history).
_STORED = """
SELECT
    (SELECT count() FROM (SELECT 1 FROM events WHERE website_id = {site:UUID}
        AND event_type = 'pageview' LIMIT 1)),
    (SELECT count() FROM (SELECT 1 FROM events WHERE website_id = {site:UUID}
        AND event_type NOT IN ('pageview', 'identify') LIMIT 1)),
    (SELECT count() FROM (SELECT 1 FROM payments WHERE website_id = {site:UUID} LIMIT 1))
"""


async def onboarding(db: AsyncSession, store: EventStore, website: Website) -> Onboarding:
    result = await store.query(_STORED, parameters={"site": str(website.id)})
    pageview, event, payment = (bool(v) for v in result.result_rows[0])
    connections = await db.scalar(
        select(func.count()).select_from(PaymentConnection).where(PaymentConnection.website_id == website.id)
    )
    steps = [
        OnboardingStep("snippet", "Install the tracking script", pageview),
        OnboardingStep("event", "Track a goal or custom event", event),
        OnboardingStep("payments", "Connect your payment provider", bool(connections) or payment),
        OnboardingStep("payment", "Receive a first payment", payment),
    ]
    return Onboarding(steps=steps, complete=all(step.done for step in steps))

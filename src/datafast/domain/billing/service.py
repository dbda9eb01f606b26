"""The billing overview (Settings → Billing) and the plan limits on sites and seats."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import BillingAccount, User
from datafast.domain.billing.accounts import (
    Status,
    account_for,
    current_account,
    owner_of,
    plan_of,
    seated_emails,
    seats_used,
    sites_owned,
    standing,
)
from datafast.domain.billing.schemas import BillingRead, PlanRead, UsageRead
from datafast.domain.billing.usage import events_in_period
from datafast.errors import PaymentRequired
from datafast.lib.eventstore import EventStore
from datafast.settings import BillingSettings, Plan

__all__ = ("billing_overview", "check_seat_limit", "check_site_limit", "current_period", "note_usage")


def _plan_read(plan: Plan) -> PlanRead:
    return PlanRead(
        name=plan.name,
        events=plan.events,
        sites=plan.sites,
        seats=plan.seats,
        retention_days=plan.retention_days,
        yearly=bool(plan.yearly_price),
    )


def current_period(account: BillingAccount, now: datetime) -> tuple[datetime, datetime]:
    """The billing period holding ``now``: Stripe's, rolled forward by its length once it has ended
    (a canceled subscription gets no new period from Stripe, but usage still counts per period)."""
    start = account.current_period_start or account.created_at or now
    end = account.current_period_end or start + timedelta(days=30)
    length = max(end - start, timedelta(days=1))
    if now >= end:
        skipped = math.floor((now - end) / length) + 1
        start, end = start + skipped * length, end + skipped * length
    return start, end


def note_usage(
    account: BillingAccount, plan: Plan, events: int, period_start: datetime, now: datetime
) -> None:
    """Over the allowance: noted once (the grace counts from then; the hourly ``billing_notices``
    job notes it too, so the grace does not wait for the owner to look), cleared in a period within it."""
    if events > plan.events:
        if account.over_allowance_since is None or account.over_allowance_since < period_start:
            account.over_allowance_since = now
    else:
        account.over_allowance_since = None


async def billing_overview(
    db: AsyncSession,
    event_store: EventStore,
    billing: BillingSettings,
    user: User,
    now: datetime | None = None,
) -> BillingRead:
    now = now or datetime.now(UTC)
    account = await account_for(db, billing, user)
    plan = plan_of(billing, account)
    start, end = current_period(account, now)
    owned = await sites_owned(db, user.id)
    events = await events_in_period(event_store, owned, start, now)
    grace = timedelta(days=billing.grace_days)
    note_usage(account, plan, events, start, now)
    verdict = standing(account, grace, now)
    upgrade = account.over_allowance_since is not None and now >= account.over_allowance_since + grace
    notice = verdict.reason
    if not notice and account.over_allowance_since is not None:
        notice = (
            "Your sites sent more events than your plan allows: upgrade to keep your data beyond the grace"
            if not upgrade
            else "Your sites are over your plan's allowance: upgrade your plan (events are still recorded)"
        )
    trial_left = None
    if account.status == Status.TRIALING and account.trial_ends_at is not None:
        trial_left = max(0, math.ceil((account.trial_ends_at - now) / timedelta(days=1)))
    return BillingRead(
        plan=_plan_read(plan),
        status=account.status,
        trial_ends_at=account.trial_ends_at,
        trial_days_left=trial_left,
        period_start=start,
        period_end=end,
        past_due_since=account.past_due_since,
        accepting_events=verdict.accepting,
        grace_ends_at=verdict.grace_ends_at,
        over_allowance_since=account.over_allowance_since,
        upgrade_required=upgrade,
        notice=notice,
        usage=UsageRead(
            events=events,
            allowance=plan.events,
            percent=events * 100 // plan.events if plan.events else 0,
            sites=len(owned),
            seats=await seats_used(db, user.id),
        ),
        subscribed=account.stripe_customer_id is not None,
        plans=[_plan_read(p) for p in billing.plans],
    )


async def check_site_limit(db: AsyncSession, billing: BillingSettings, user: User) -> None:
    """Before ``user`` adds a site: their plan must allow one more."""
    plan = plan_of(billing, await current_account(db, billing, user))
    if len(await sites_owned(db, user.id)) >= plan.sites:
        raise PaymentRequired(
            f"Your {plan.name} plan allows {plan.sites} site{'s' if plan.sites != 1 else ''}: "
            "upgrade it in Settings → Billing to add another",
            extra={"limit": "sites", "allowed": plan.sites},
        )


async def check_seat_limit(
    db: AsyncSession, billing: BillingSettings, website_id: uuid.UUID, email: str
) -> None:
    """Before someone is invited to a site: a new person needs a free seat on its owner's plan."""
    owner = await owner_of(db, website_id)
    if owner is None:
        return
    plan = plan_of(billing, await current_account(db, billing, owner))
    used = await seats_used(db, owner.id)
    if used >= plan.seats and not await _already_seated(db, owner.id, email):
        raise PaymentRequired(
            f"The {plan.name} plan of this site's owner allows {plan.seats} team "
            f"member{'s' if plan.seats != 1 else ''} besides the owner: upgrade it to invite more",
            extra={"limit": "seats", "allowed": plan.seats},
        )


async def _already_seated(db: AsyncSession, owner_id: uuid.UUID, email: str) -> bool:
    return email.lower() in await seated_emails(db, owner_id)

"""A user's billing account: the plan and Stripe state of everything they own, and what it allows.

The account belongs to the owner of sites: their sites count against its plan, and their
sites' members (besides themselves) are its seats. A user without a row (signed up before
hosted mode was turned on) gets a trial starting from their sign-up, like a new one.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import BillingAccount, Invitation, Membership, Role, User
from datafast.settings import BillingSettings, Plan

__all__ = (
    "Standing",
    "Status",
    "account_for",
    "current_account",
    "owner_of",
    "plan_of",
    "seated_emails",
    "seats_used",
    "sites_owned",
    "standing",
    "start_trial",
)


class Status(enum.StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class Standing:
    """Whether the account's sites may send events now, and until when they may without paying."""

    accepting: bool
    reason: str
    """Why not (or why only until ``grace_ends_at``); empty when in good standing."""
    grace_ends_at: datetime | None = None


def plan_of(billing: BillingSettings, account: BillingAccount) -> Plan:
    """The account's plan; a plan removed from the config falls back to the first one."""
    return billing.plan(account.plan) or billing.plans[0]


def start_trial(billing: BillingSettings, user_id: uuid.UUID, started: datetime) -> BillingAccount:
    return BillingAccount(
        user_id=user_id,
        plan=billing.plans[0].name,
        status=Status.TRIALING,
        trial_ends_at=started + timedelta(days=billing.trial_days),
        current_period_start=started,
        current_period_end=started + timedelta(days=billing.trial_days),
    )


async def current_account(db: AsyncSession, billing: BillingSettings, user: User) -> BillingAccount:
    """The stored account, or (not stored) the trial a user without one has from their sign-up."""
    account = await db.scalar(select(BillingAccount).where(BillingAccount.user_id == user.id))
    return account or start_trial(billing, user.id, user.created_at or datetime.now(UTC))


async def account_for(db: AsyncSession, billing: BillingSettings, user: User) -> BillingAccount:
    """The stored account, stored now (as its trial) if the user had none: for changing it."""
    account = await current_account(db, billing, user)
    if account not in db:
        db.add(account)
        await db.flush()
    return account


def standing(account: BillingAccount, grace: timedelta, now: datetime) -> Standing:
    """Trialing and active accounts send events; an unpaid one (past due, or a trial that ended
    without a subscription) keeps sending for ``grace``; a canceled one stops at the period's end
    (it was paid for) plus ``grace``."""
    status = account.status
    if status == Status.ACTIVE:
        return Standing(True, "")
    if status == Status.TRIALING:
        ends = account.trial_ends_at
        if ends is None or now < ends:
            return Standing(True, "")
        return _grace("The trial has ended: choose a plan", ends + grace, now)
    if status == Status.PAST_DUE:
        since = account.past_due_since or now
        return _grace("The last invoice is unpaid: update the payment method", since + grace, now)
    ended = account.current_period_end or account.canceled_at or now
    return _grace("The subscription is canceled: choose a plan", ended + grace, now)


def _grace(reason: str, ends: datetime, now: datetime) -> Standing:
    return Standing(now < ends, reason, ends)


async def sites_owned(db: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await db.scalars(
        select(Membership.website_id).where(Membership.user_id == user_id, Membership.role == Role.OWNER)
    )
    return list(rows)


async def seats_used(db: AsyncSession, user_id: uuid.UUID) -> int:
    """Distinct people besides the owner who are members of, or invited to, the owner's sites."""
    return len(await seated_emails(db, user_id))


async def seated_emails(db: AsyncSession, user_id: uuid.UUID) -> set[str]:
    owned = await sites_owned(db, user_id)
    if not owned:
        return set()
    members = set(
        await db.scalars(
            select(User.email)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.website_id.in_(owned), Membership.user_id != user_id)
        )
    )
    invited = set(
        await db.scalars(
            select(func.lower(Invitation.email)).where(
                Invitation.website_id.in_(owned),
                Invitation.accepted_at.is_(None),
                Invitation.expires_at > datetime.now(UTC),
            )
        )
    )
    return {m.lower() for m in members} | invited


async def owner_of(db: AsyncSession, website_id: uuid.UUID) -> User | None:
    return await db.scalar(
        select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.website_id == website_id, Membership.role == Role.OWNER)
    )

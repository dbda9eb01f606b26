"""API types of hosted-mode billing."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

__all__ = ("BillingRead", "CheckoutCreate", "PlanRead", "RedirectRead", "UsageRead", "WebhookAck")


class PlanRead(msgspec.Struct):
    name: str
    events: int
    sites: int
    seats: int
    retention_days: int
    yearly: bool


class UsageRead(msgspec.Struct):
    events: int
    allowance: int
    percent: int
    """Of the allowance, rounded down; over 100 when over it."""
    sites: int
    seats: int


class BillingRead(msgspec.Struct):
    plan: PlanRead
    status: str
    """trialing | active | past_due | canceled"""
    trial_ends_at: datetime | None
    trial_days_left: int | None
    period_start: datetime | None
    period_end: datetime | None
    past_due_since: datetime | None
    accepting_events: bool
    """False once an unpaid or canceled account is past its grace: /track answers 402."""
    grace_ends_at: datetime | None
    over_allowance_since: datetime | None
    upgrade_required: bool
    """Over the allowance for longer than the grace: the dashboard asks for an upgrade
    (events are still recorded)."""
    notice: str
    """What the account should do, if anything."""
    usage: UsageRead
    subscribed: bool
    """Whether a Stripe customer exists (the portal can be opened)."""
    plans: list[PlanRead]


class CheckoutCreate(msgspec.Struct, forbid_unknown_fields=True):
    plan: str
    interval: Literal["month", "year"] = "month"


class RedirectRead(msgspec.Struct):
    url: str


class WebhookAck(msgspec.Struct):
    received: bool
    duplicate: bool

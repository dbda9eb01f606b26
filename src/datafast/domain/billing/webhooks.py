"""Stripe billing webhooks: the account follows its subscription, whatever order events arrive in.

Handled: ``checkout.session.completed``, ``customer.subscription.created|updated|deleted``,
``customer.subscription.trial_will_end``, ``invoice.paid``, ``invoice.payment_failed``.

- The signature is checked by the ``stripe`` package (every ``v1``, 300 s tolerance) before
  the body is parsed.
- The event id is stored (unique) in the same transaction as its effect: a redelivery, or the
  same event arriving twice at once, changes nothing the second time.
- Stripe does not guarantee order. The status keeps the ``created`` of the last event applied
  to it (subscription and invoice events); the plan and period keep that of the last
  subscription event. An older event arriving later is recorded and ignored. Within one second
  a ``deleted`` wins over anything else, since nothing follows a deletion.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import BillingAccount, BillingEvent, User
from datafast.domain.billing.accounts import Status, account_for
from datafast.log import get_logger
from datafast.settings import BillingSettings

__all__ = ("BadSignature", "Notice", "Outcome", "apply_event", "verify")

log = get_logger(__name__)

HANDLED = frozenset(
    {
        "checkout.session.completed",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.trial_will_end",
        "invoice.paid",
        "invoice.payment_failed",
    }
)
_STATUSES = {
    "active": Status.ACTIVE,
    "trialing": Status.TRIALING,
    "past_due": Status.PAST_DUE,
    "unpaid": Status.PAST_DUE,
    "canceled": Status.CANCELED,
    "incomplete_expired": Status.CANCELED,
    "paused": Status.CANCELED,
}
"""Stripe subscription status → ours; ``incomplete`` (first payment pending) changes nothing."""


class BadSignature(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Notice:
    """A mail the event calls for, sent once the effect is committed."""

    kind: str
    """``payment_failed`` or ``trial_ending``."""
    user_id: uuid.UUID


@dataclass(slots=True)
class Outcome:
    duplicate: bool = False
    notices: list[Notice] = field(default_factory=list)


def verify(body: bytes, header: str, secret: str) -> dict[str, Any]:
    """The event, once ``Stripe-Signature`` proves Stripe sent these exact bytes."""
    try:
        stripe.WebhookSignature.verify_header(body.decode(), header, secret, tolerance=300)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise BadSignature(str(exc)) from None
    try:
        event = json.loads(body)
    except ValueError:
        raise BadSignature("not JSON") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event.get("type"):
        raise BadSignature("not a Stripe event")
    return event


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) and value > 0 else None


async def apply_event(db: AsyncSession, billing: BillingSettings, event: dict[str, Any]) -> Outcome:
    event_id, kind = str(event["id"]), str(event["type"])
    if await db.scalar(select(BillingEvent.id).where(BillingEvent.event_id == event_id)) is not None:
        return Outcome(duplicate=True)
    db.add(BillingEvent(event_id=event_id, type=kind[:64]))
    outcome = Outcome()
    if kind not in HANDLED:
        return outcome
    obj = event.get("data", {}).get("object", {})
    raw_created = event.get("created")
    created = raw_created if isinstance(raw_created, int) else 0
    account = await _account(db, billing, obj, kind)
    if account is None:
        log.warning("billing event for no known account", event_id=event_id, type=kind)
        return outcome
    at = _time(created) or datetime.now(UTC)
    if kind == "checkout.session.completed":
        account.stripe_subscription_id = obj.get("subscription") or account.stripe_subscription_id
        if obj.get("payment_status") in ("paid", "no_payment_required"):
            _set_status(account, Status.ACTIVE, created, at)
    elif kind == "customer.subscription.trial_will_end":
        outcome.notices.append(Notice("trial_ending", account.user_id))
    elif kind.startswith("customer.subscription."):
        status = Status.CANCELED if kind.endswith(".deleted") else _STATUSES.get(str(obj.get("status")))
        if status is not None:
            _set_status(account, status, created, at, deleted=kind.endswith(".deleted"))
        _set_subscription(billing, account, obj, created)
    elif kind == "invoice.paid":
        if account.status in (Status.PAST_DUE, Status.TRIALING):
            _set_status(account, Status.ACTIVE, created, at)
    elif kind == "invoice.payment_failed" and _set_status(account, Status.PAST_DUE, created, at):
        outcome.notices.append(Notice("payment_failed", account.user_id))
    return outcome


def _set_status(
    account: BillingAccount, status: Status, created: int, at: datetime, *, deleted: bool = False
) -> bool:
    last = account.status_event_at
    if created < last or (created == last and account.status == Status.CANCELED and not deleted):
        return False
    account.status_event_at = created
    if status == Status.PAST_DUE and account.status != Status.PAST_DUE:
        account.past_due_since = at
    elif status != Status.PAST_DUE:
        account.past_due_since = None
    if status == Status.CANCELED and account.canceled_at is None:
        account.canceled_at = at
    elif status != Status.CANCELED:
        account.canceled_at = None
    account.status = status
    return True


def _set_subscription(
    billing: BillingSettings, account: BillingAccount, subscription: dict[str, Any], created: int
) -> None:
    if created < account.subscription_event_at:
        return
    account.subscription_event_at = created
    account.stripe_subscription_id = subscription.get("id") or account.stripe_subscription_id
    items = (subscription.get("items") or {}).get("data") or [{}]
    item = items[0]
    price = (item.get("price") or {}).get("id", "")
    plan = billing.plan_for_price(price)
    if plan is not None:
        account.plan = plan.name
    elif price:
        log.warning("subscription to a price no plan lists", price=price)
    # Current API versions keep the period on the item; older ones on the subscription.
    start = _time(item.get("current_period_start") or subscription.get("current_period_start"))
    end = _time(item.get("current_period_end") or subscription.get("current_period_end"))
    if start and end:
        account.current_period_start, account.current_period_end = start, end
    trial_end = _time(subscription.get("trial_end"))
    if trial_end is not None:
        account.trial_ends_at = trial_end


async def _account(
    db: AsyncSession, billing: BillingSettings, obj: dict[str, Any], kind: str
) -> BillingAccount | None:
    """By the Stripe customer (made by us before checkout), else by the user id we put in metadata."""
    customer = obj.get("customer")
    if isinstance(customer, str) and customer:
        account = await db.scalar(select(BillingAccount).where(BillingAccount.stripe_customer_id == customer))
        if account is not None:
            return account
    metadata = obj.get("metadata") or {}
    raw = obj.get("client_reference_id") or metadata.get("datafast_user_id")
    try:
        user_id = uuid.UUID(str(raw))
    except ValueError:
        return None
    user = await db.get(User, user_id)
    if user is None:
        return None
    account = await account_for(db, billing, user)
    if isinstance(customer, str) and customer and account.stripe_customer_id is None:
        account.stripe_customer_id = customer
    return account

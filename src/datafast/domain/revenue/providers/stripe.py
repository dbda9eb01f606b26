"""Stripe: ``Stripe-Signature`` checked by the ``stripe`` package, then payments and refunds.

Money events: ``checkout.session.completed`` (when paid) and
``checkout.session.async_payment_succeeded``, ``payment_intent.succeeded``, ``invoice.paid``;
refunds from ``charge.refunded`` (``amount_refunded`` is cumulative: the delta is stored).
``refund.created`` is acknowledged but not stored, since ``charge.refunded`` reports the same
money. ``payment_intent.succeeded`` is for PaymentIntents made outside Checkout and Billing: it
is the same payment as a Checkout Session naming that intent, but on API versions from
2025-03-31 an invoice's intent does not name the invoice (unless the invoice lists its
payments). A subscription checkout sends both the session and ``invoice.paid``
(``subscription_create``) for one payment: both name the invoice, so they count once.

Subscriptions: ``customer.subscription.created|updated|deleted`` (and ``paused``/``resumed``)
carry the whole subscription; its state is recorded at the event's ``created`` (Stripe does not
deliver in order: the timeline sorts by it). Stripe's ``canceled`` status is an ended
subscription; ``cancel_at_period_end`` keeps it ``active`` with ``canceled_at`` set.
"""

from __future__ import annotations

from typing import Any

import stripe as stripe_sdk

from datafast.domain.revenue.providers._base import (
    BadSignature,
    Incoming,
    SubscriptionState,
    Verified,
    as_int,
    decode_json,
    get,
    link_ids,
    maybe_time,
    parse_time,
)

__all__ = ("StripeProvider",)

TOLERANCE = 300


def _ids(*values: Any) -> list[str]:
    return [v for v in values if isinstance(v, str) and v]


class StripeProvider:
    name = "stripe"

    def verify(self, body: bytes, headers: dict[str, str], secret: str, now: float) -> Verified:
        header = headers.get("stripe-signature", "")
        try:
            # The stripe package checks every v1 signature (secret rotation) and the 300 s tolerance.
            stripe_sdk.WebhookSignature.verify_header(body, header, secret, tolerance=TOLERANCE)
        except (stripe_sdk.SignatureVerificationError, UnicodeDecodeError) as exc:
            raise BadSignature(f"Stripe signature: {exc}") from None
        return self.parse(decode_json(body))

    def parse(self, event: dict[str, Any]) -> Verified:
        """What a Stripe event (its signature checked, or one rebuilt from an API object by the
        history import) means."""
        event_id = get(event, "id", default="")
        if not isinstance(event_id, str) or not event_id:
            raise BadSignature("a Stripe event without an id")
        kind = str(get(event, "type", default=""))
        obj = get(event, "data", "object", default={})
        at = parse_time(get(event, "created"))
        obj = obj if isinstance(obj, dict) else {}
        if kind.startswith("customer.subscription.") and kind != "customer.subscription.trial_will_end":
            return Verified(event_id, kind, [], [_subscription(event_id, obj, at)])
        return Verified(delivery_id=event_id, event=kind, items=_parse(kind, obj, at))


_STATUSES = {"canceled": "ended", "unpaid": "ended", "incomplete_expired": "ended"}


def _subscription(event_id: str, sub: dict[str, Any], at: Any) -> SubscriptionState:
    """Every item's price times quantity is one period's amount (items share the interval)."""
    items = [i for i in get(sub, "items", "data", default=[]) if isinstance(i, dict)]
    amount = sum(as_int(get(i, "price", "unit_amount")) * (as_int(get(i, "quantity")) or 1) for i in items)
    recurring = get(items[0], "price", "recurring", default={}) if items else {}
    status = str(get(sub, "status", default=""))
    visitor, session = link_ids(get(sub, "metadata"))
    return SubscriptionState(
        subscription_id=str(get(sub, "id", default="")),
        event_id=event_id,
        at=at,
        status=_STATUSES.get(status, status),
        amount=amount,
        currency=str(get(sub, "currency", default="")).upper(),
        interval=str(get(recurring, "interval", default="month")),
        interval_count=as_int(get(recurring, "interval_count")) or 1,
        plan=str(get(items[0], "price", "id", default="")) if items else "",
        customer_id=str(get(sub, "customer", default="") or ""),
        started_at=maybe_time(get(sub, "start_date")),
        trial_start=maybe_time(get(sub, "trial_start")),
        trial_end=maybe_time(get(sub, "trial_end")),
        canceled_at=maybe_time(get(sub, "canceled_at")),
        ended_at=maybe_time(get(sub, "ended_at")),
        visitor_id=visitor,
        session_id=session,
    )


def _parse(kind: str, obj: dict[str, Any], at: Any) -> list[Incoming]:
    if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        if get(obj, "payment_status") != "paid":
            return []  # delayed methods (bank debits) pay later: async_payment_succeeded
        return [_checkout(obj, at)]
    if kind == "payment_intent.succeeded":
        return [_payment_intent(obj, at)]
    if kind == "invoice.paid":
        invoice = _invoice(obj, at)
        return [invoice] if invoice.amount > 0 else []
    if kind == "charge.refunded":
        return [_charge_refunded(obj, at)]
    return []


def _checkout(obj: dict[str, Any], at: Any) -> Incoming:
    invoice = get(obj, "invoice", default="")
    payment_intent = get(obj, "payment_intent", default="")
    key = (
        f"invoice:{invoice}"
        if isinstance(invoice, str) and invoice
        else f"payment_intent:{payment_intent}"
        if isinstance(payment_intent, str) and payment_intent
        else f"checkout:{obj.get('id', '')}"
    )
    visitor, session = link_ids(get(obj, "metadata"))
    return Incoming(
        kind="payment",
        key=key,
        timestamp=parse_time(get(obj, "created"), at),
        amount=as_int(get(obj, "amount_total")),
        currency=str(get(obj, "currency", default="")).upper(),
        transaction_id=key.split(":", 1)[1],  # the invoice or intent: what the other events name
        refs=_ids(get(obj, "id"), invoice, payment_intent),
        subscription_id=str(get(obj, "subscription", default="") or ""),
        customer_id=str(get(obj, "customer", default="") or ""),
        visitor_id=visitor,
        session_id=session,
        email=str(
            get(obj, "customer_details", "email", default="") or get(obj, "customer_email", default="")
        ),
    )


def _payment_intent(obj: dict[str, Any], at: Any) -> Incoming:
    visitor, session = link_ids(get(obj, "metadata"))
    invoice = get(obj, "invoice", default="")  # present on API versions before 2025-03-31
    return Incoming(
        kind="payment",
        key=f"invoice:{invoice}"
        if isinstance(invoice, str) and invoice
        else f"payment_intent:{obj.get('id')}",
        timestamp=parse_time(get(obj, "created"), at),
        amount=as_int(get(obj, "amount_received") or get(obj, "amount")),
        currency=str(get(obj, "currency", default="")).upper(),
        transaction_id=str(get(obj, "id", default="")),
        refs=_ids(get(obj, "id"), invoice, get(obj, "latest_charge")),
        customer_id=str(get(obj, "customer", default="") or ""),
        visitor_id=visitor,
        session_id=session,
        email=str(get(obj, "receipt_email", default="")),
    )


def _invoice(obj: dict[str, Any], at: Any) -> Incoming:
    details = get(obj, "parent", "subscription_details", default={})
    subscription = get(details, "subscription", default="") or get(obj, "subscription", default="")
    if isinstance(subscription, dict):
        subscription = subscription.get("id", "")
    reason = get(obj, "billing_reason", default="")
    payments = get(obj, "payments", "data", default=[])
    intents = [get(p, "payment", "payment_intent") for p in payments if isinstance(p, dict)]
    visitor, session = link_ids(
        get(details, "metadata"), get(obj, "subscription_details", "metadata"), get(obj, "metadata")
    )
    return Incoming(
        kind="payment",
        key=f"invoice:{obj.get('id', '')}",
        timestamp=parse_time(get(obj, "status_transitions", "paid_at") or get(obj, "created"), at),
        amount=as_int(get(obj, "amount_paid")),
        currency=str(get(obj, "currency", default="")).upper(),
        transaction_id=str(get(obj, "id", default="")),
        refs=_ids(get(obj, "id"), get(obj, "payment_intent"), get(obj, "charge"), *intents),
        # subscription_update (an upgrade's proration) is money from an existing customer.
        is_renewal=reason in ("subscription_cycle", "subscription_update"),
        subscription_id=str(subscription or ""),
        customer_id=str(get(obj, "customer", default="") or ""),
        visitor_id=visitor,
        session_id=session,
        email=str(get(obj, "customer_email", default="")),
    )


def _charge_refunded(obj: dict[str, Any], at: Any) -> Incoming:
    charge = str(get(obj, "id", default=""))
    visitor, session = link_ids(get(obj, "metadata"))
    return Incoming(
        kind="refund",
        key=f"charge:{charge}",
        timestamp=at,
        amount=as_int(get(obj, "amount_refunded")),
        currency=str(get(obj, "currency", default="")).upper(),
        transaction_id=str(get(obj, "payment_intent", default="") or charge),
        refund_of=_ids(charge, get(obj, "payment_intent"), get(obj, "invoice")),
        cumulative=True,
        refund_scope=f"charge:{charge}",
        # A subscription's charge may name no id the invoice listed: the customer and amount do.
        customer_id=str(get(obj, "customer", default="") or ""),
        original_amount=as_int(get(obj, "amount")),
        visitor_id=visitor,
        session_id=session,
        email=str(get(obj, "billing_details", "email", default="") or get(obj, "receipt_email", default="")),
    )

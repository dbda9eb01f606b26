"""Lemon Squeezy: ``X-Signature`` (hex HMAC-SHA256 of the raw body), then orders, subscription
payments and the subscription lifecycle.

There is no timestamp and no delivery id: a replay is the same bytes, so the body's hash is
the delivery id, and every payment is also keyed by its order or invoice id.
The event name is read from the signed body (``meta.event_name``); the ``X-Event-Name`` header is
outside the signature, so a delivery whose header names another event is refused.
``subscription_payment_success`` with ``billing_reason: initial`` is the same money as
``order_created`` (the double-count trap): only the order is stored. Renewals find their
first payment by subscription, else by customer, and inherit its visitor.

``subscription_created|updated|cancelled|resumed|expired|paused|unpaused`` carry the whole
subscription but no price (its variant's price lives in the Prices API): its state is recorded at
``updated_at`` with the amount of its latest paid payment (the order, then its invoices) and the
billing interval its ``renews_at`` implies (see ``PaymentService.record_subscriptions``).
``cancelled`` is a cancellation that waits for ``ends_at``: still active, ``canceled_at`` set.
"""

from __future__ import annotations

import hashlib
from typing import Any

from datafast.domain.revenue.providers._base import (
    BadSignature,
    Incoming,
    SubscriptionState,
    Verified,
    as_int,
    decode_json,
    equal,
    get,
    hmac_sha256,
    link_ids,
    maybe_time,
    parse_time,
)

__all__ = ("LemonSqueezyProvider",)


class LemonSqueezyProvider:
    name = "lemonsqueezy"

    def verify(self, body: bytes, headers: dict[str, str], secret: str, now: float) -> Verified:
        signature = headers.get("x-signature", "")
        expected = hmac_sha256(secret.encode(), body).hex()
        if not signature or not equal(signature.strip().lower(), expected):
            raise BadSignature("X-Signature does not match the body")
        payload = decode_json(body)
        event = str(get(payload, "meta", "event_name", default=""))
        if not event:
            raise BadSignature("the signed body has no meta.event_name")
        header = headers.get("x-event-name", "").strip()
        if header and header != event:
            raise BadSignature("X-Event-Name does not match the signed body's meta.event_name")
        data = get(payload, "data", default={})
        custom = get(payload, "meta", "custom_data", default={})
        return self.parse(hashlib.sha256(body).hexdigest(), event, data, custom)

    def parse(self, delivery: str, event: str, data: Any, custom: Any = None) -> Verified:
        """What an event means (its signature checked, or rebuilt from an API object by the history
        import): ``data`` is the JSON:API resource (order, subscription invoice, subscription),
        ``custom`` the checkout's custom data (webhooks only: the API does not return it)."""
        data = data if isinstance(data, dict) else {}
        if event in SUBSCRIPTION_EVENTS:
            return Verified(delivery, event, [], [_subscription(delivery, data, custom)])
        return Verified(delivery_id=delivery, event=event, items=_parse(event, data, custom))


SUBSCRIPTION_EVENTS = (
    "subscription_created",
    "subscription_updated",
    "subscription_cancelled",
    "subscription_resumed",
    "subscription_expired",
    "subscription_paused",
    "subscription_unpaused",
)
_STATUSES = {"on_trial": "trialing", "cancelled": "active", "expired": "ended", "unpaid": "ended"}


def _subscription(delivery: str, data: dict[str, Any], custom: Any) -> SubscriptionState:
    attributes = get(data, "attributes", default={})
    attributes = attributes if isinstance(attributes, dict) else {}
    status = str(get(attributes, "status", default=""))
    at = parse_time(get(attributes, "updated_at") or get(attributes, "created_at"))
    created = maybe_time(get(attributes, "created_at"))
    trial_end = maybe_time(get(attributes, "trial_ends_at"))
    visitor, session = link_ids(custom)
    order = str(get(attributes, "order_id", default=""))
    plan = " / ".join(
        str(name) for name in (get(attributes, "product_name"), get(attributes, "variant_name")) if name
    )
    return SubscriptionState(
        subscription_id=str(get(data, "id", default="")),
        event_id=delivery,
        at=at,
        status=_STATUSES.get(status, status),
        amount=0,
        currency="",
        plan=plan,
        customer_id=str(get(attributes, "customer_id", default="")),
        started_at=created,
        trial_start=created if trial_end is not None else None,
        trial_end=trial_end,
        canceled_at=at if status == "cancelled" or get(attributes, "cancelled") is True else None,
        ended_at=(maybe_time(get(attributes, "ends_at")) or at) if status in ("expired", "unpaid") else None,
        visitor_id=visitor,
        session_id=session,
        priced_by_payments=True,
        payment_refs=[f"order:{order}"] if order else [],
        renews_at=maybe_time(get(attributes, "renews_at")),
    )


def _usd(attributes: dict[str, Any], field: str) -> dict[str, int]:
    value = get(attributes, field)
    return {"USD": as_int(value)} if value is not None else {}


def _parse(event: str, data: dict[str, Any], custom: Any) -> list[Incoming]:
    attributes = get(data, "attributes", default={})
    if not isinstance(attributes, dict):
        return []
    object_id = str(get(data, "id", default=""))
    currency = str(get(attributes, "currency", default="")).upper()
    at = parse_time(get(attributes, "created_at"))
    visitor, session = link_ids(custom)
    email = str(get(attributes, "user_email", default=""))
    customer = str(get(attributes, "customer_id", default=""))
    reason = get(attributes, "billing_reason", default="")
    if event == "order_created":
        if get(attributes, "status", default="paid") not in ("paid", "refunded", "partial_refund"):
            return []
        return [
            Incoming(
                kind="payment",
                key=f"order:{object_id}",
                timestamp=at,
                amount=as_int(get(attributes, "total")),
                currency=currency,
                transaction_id=object_id,
                refs=[f"order:{object_id}"],
                customer_id=customer,
                visitor_id=visitor,
                session_id=session,
                email=email,
                provider_amounts=_usd(attributes, "total_usd"),
            )
        ]
    if event == "order_refunded":
        refunded = get(attributes, "refunded_amount")
        return [
            Incoming(
                kind="refund",
                key=f"order:{object_id}",
                timestamp=parse_time(get(attributes, "refunded_at") or get(attributes, "updated_at")),
                amount=as_int(refunded) if refunded is not None else as_int(get(attributes, "total")),
                currency=currency,
                transaction_id=object_id,
                refund_of=[f"order:{object_id}"],
                cumulative=True,
                refund_scope=f"order:{object_id}",
                customer_id=customer,
                visitor_id=visitor,
                session_id=session,
                email=email,
            )
        ]
    if event in ("subscription_payment_success", "subscription_payment_refunded") and reason == "initial":
        return []  # the same money as order_created / order_refunded
    subscription = str(get(attributes, "subscription_id", default=""))
    if event == "subscription_payment_success":
        if get(attributes, "status", default="paid") != "paid":
            return []
        return [
            Incoming(
                kind="payment",
                key=f"invoice:{object_id}",
                timestamp=at,
                amount=as_int(get(attributes, "total")),
                currency=currency,
                transaction_id=object_id,
                refs=[f"invoice:{object_id}"],
                is_renewal=True,
                subscription_id=subscription,
                customer_id=customer,
                visitor_id=visitor,
                session_id=session,
                email=email,
                provider_amounts=_usd(attributes, "total_usd"),
            )
        ]
    if event == "subscription_payment_refunded":
        refunded = get(attributes, "refunded_amount")
        return [
            Incoming(
                kind="refund",
                key=f"invoice:{object_id}",
                timestamp=parse_time(get(attributes, "refunded_at") or get(attributes, "updated_at")),
                amount=as_int(refunded) if refunded is not None else as_int(get(attributes, "total")),
                currency=currency,
                transaction_id=object_id,
                refund_of=[f"invoice:{object_id}"],
                cumulative=True,
                refund_scope=f"invoice:{object_id}",
                subscription_id=subscription,
                customer_id=customer,
            )
        ]
    return []

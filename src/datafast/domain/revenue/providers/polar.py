"""Polar: Standard Webhooks signatures, then ``order.paid``, ``order.refunded`` and ``subscription.*``.

The signed bytes are ``"{webhook-id}.{webhook-timestamp}." + body``; the key is the full
``polar_whs_…`` secret as UTF-8 bytes; ``webhook-signature`` lists ``v1,<base64>`` entries
(several during rotation); timestamps more than 5 minutes off are refused.
``refund.created`` is acknowledged but not stored: ``order.refunded`` reports the same money
(``refunded_amount`` is cumulative, so the delta is stored).
Every ``subscription.*`` event (created, active, updated, canceled, uncanceled, revoked) carries
the whole subscription: its state is recorded at its ``modified_at``. Polar's ``canceled``
status is a subscription that has ended (revoked); a cancellation at the period's end keeps
``active`` with ``cancel_at_period_end``.
"""

from __future__ import annotations

import base64
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

__all__ = ("PolarProvider",)

TOLERANCE = 300


class PolarProvider:
    name = "polar"

    def verify(self, body: bytes, headers: dict[str, str], secret: str, now: float) -> Verified:
        delivery = headers.get("webhook-id", "")
        timestamp = headers.get("webhook-timestamp", "")
        signatures = headers.get("webhook-signature", "")
        if not delivery or not timestamp.isdigit() or not signatures:
            raise BadSignature("missing webhook-id, webhook-timestamp or webhook-signature")
        if abs(now - int(timestamp)) > TOLERANCE:
            raise BadSignature("webhook-timestamp is more than 5 minutes off")
        signed = f"{delivery}.{timestamp}.".encode() + body
        expected = base64.b64encode(hmac_sha256(secret.encode(), signed)).decode()
        found = False
        for entry in signatures.split():
            version, _, signature = entry.partition(",")
            if version == "v1" and equal(signature, expected):
                found = True
        if not found:
            raise BadSignature("no webhook-signature matches the body")
        payload = decode_json(body)
        data = get(payload, "data", default={})
        return self.parse(delivery, str(get(payload, "type", default="")), data)

    def parse(self, delivery: str, event: str, data: Any) -> Verified:
        """What an event means (its signature checked, or rebuilt from an API object by the history
        import): ``data`` is the order or subscription, as Polar's API also returns it."""
        data = data if isinstance(data, dict) else {}
        if event.startswith("subscription."):
            return Verified(delivery, event, [], [_subscription(delivery, data)])
        return Verified(delivery, event, _parse(event, data))


_STATUSES = {"canceled": "ended", "unpaid": "ended", "incomplete_expired": "ended"}


def _subscription(delivery: str, sub: dict[str, Any]) -> SubscriptionState:
    visitor, session = link_ids(get(sub, "metadata"), get(sub, "customer", "metadata"))
    status = str(get(sub, "status", default=""))
    return SubscriptionState(
        subscription_id=str(get(sub, "id", default="")),
        event_id=delivery,
        at=parse_time(get(sub, "modified_at") or get(sub, "created_at")),
        status=_STATUSES.get(status, status),
        amount=as_int(get(sub, "amount")),
        currency=str(get(sub, "currency", default="")).upper(),
        interval=str(get(sub, "recurring_interval", default="month")),
        interval_count=as_int(get(sub, "recurring_interval_count")) or 1,
        plan=str(get(sub, "product", "name", default="") or get(sub, "product_id", default="")),
        customer_id=str(get(sub, "customer_id", default="")),
        started_at=maybe_time(get(sub, "started_at")),
        trial_start=maybe_time(get(sub, "trial_start")),
        trial_end=maybe_time(get(sub, "trial_end")),
        canceled_at=maybe_time(get(sub, "canceled_at")),
        ended_at=maybe_time(get(sub, "ended_at")),
        visitor_id=visitor,
        session_id=session,
    )


def _parse(event: str, order: dict[str, Any]) -> list[Incoming]:
    order_id = str(get(order, "id", default=""))
    currency = str(get(order, "currency", default="")).upper()
    visitor, session = link_ids(get(order, "metadata"), get(order, "customer", "metadata"))
    common: dict[str, Any] = {
        "currency": currency,
        "transaction_id": order_id,
        "subscription_id": str(get(order, "subscription_id", default="")),
        "customer_id": str(get(order, "customer_id", default="") or get(order, "customer", "id", default="")),
        "visitor_id": visitor,
        "session_id": session,
        "email": str(get(order, "customer", "email", default="")),
    }
    if event == "order.paid":
        return [
            Incoming(
                kind="payment",
                key=f"order:{order_id}",
                timestamp=parse_time(get(order, "created_at")),
                amount=as_int(get(order, "total_amount")),
                refs=[f"order:{order_id}"],
                is_renewal=get(order, "billing_reason") in ("subscription_cycle", "subscription_update"),
                **common,
            )
        ]
    if event == "order.refunded":
        return [
            Incoming(
                kind="refund",
                key=f"order:{order_id}",
                timestamp=parse_time(get(order, "modified_at") or get(order, "created_at")),
                amount=as_int(get(order, "refunded_amount")),
                refund_of=[f"order:{order_id}"],
                cumulative=True,
                refund_scope=f"order:{order_id}",
                **common,
            )
        ]
    return []

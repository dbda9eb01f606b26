"""Paddle Billing: ``Paddle-Signature`` checked by hand, then transactions, adjustments, subscriptions.

``Paddle-Signature: ts=<unix>;h1=<hex>`` (several ``h1`` during secret rotation): HMAC-SHA256
over ``"{ts}:" + raw_body`` keyed with the notification destination's whole secret key
(``pdl_ntfset_…``). Paddle's SDKs allow 5 s of clock difference; we allow 300 s like the other
providers' schemes (a replay inside that window is stopped by the notification id).

Money events: ``transaction.completed`` (``details.totals.grand_total``, amounts are strings in
minor units; ``origin`` ``subscription_recurring`` is a renewal, ``subscription_update`` an
upgrade's proration); refunds: ``adjustment.created`` / ``adjustment.updated`` with ``action``
``refund`` once ``status`` is ``approved`` (a refund waits for Paddle's approval), negative by
their ``totals.total``, linked to ``transaction_id``. ``subscription.*`` events carry the whole
subscription: its state is recorded at its ``updated_at``. Visitor ids travel in ``custom_data``.
"""

from __future__ import annotations

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

__all__ = ("PaddleProvider",)

TOLERANCE = 300


class PaddleProvider:
    name = "paddle"

    def verify(self, body: bytes, headers: dict[str, str], secret: str, now: float) -> Verified:
        parts = [p.strip().partition("=") for p in headers.get("paddle-signature", "").split(";")]
        timestamp = next((v for k, _, v in parts if k == "ts"), "")
        signatures = [v for k, _, v in parts if k == "h1" and v]
        if not timestamp.isdigit() or not signatures:
            raise BadSignature("missing Paddle-Signature ts or h1")
        if abs(now - int(timestamp)) > TOLERANCE:
            raise BadSignature("Paddle-Signature ts is more than 5 minutes off")
        expected = hmac_sha256(secret.encode(), f"{timestamp}:".encode() + body).hex()
        if not any(equal(signature, expected) for signature in signatures):
            raise BadSignature("no Paddle-Signature h1 matches the body")
        event = decode_json(body)
        kind = str(get(event, "event_type", default=""))
        delivery = str(get(event, "notification_id", default="") or get(event, "event_id", default=""))
        if not delivery:
            raise BadSignature("a Paddle notification without an id")
        data = get(event, "data", default={})
        data = data if isinstance(data, dict) else {}
        at = parse_time(get(event, "occurred_at"))
        if kind.startswith("subscription."):
            return Verified(delivery, kind, [], [_subscription(delivery, data, at)])
        if kind == "transaction.completed":
            return Verified(delivery, kind, [_transaction(data, at)])
        if kind in ("adjustment.created", "adjustment.updated"):
            refund = _adjustment(data, at)
            return Verified(delivery, kind, [refund] if refund else [])
        return Verified(delivery, kind, [])


def _transaction(txn: dict[str, Any], at: Any) -> Incoming:
    txn_id = str(get(txn, "id", default=""))
    totals = get(txn, "details", "totals", default={})
    visitor, session = link_ids(get(txn, "custom_data"))
    return Incoming(
        kind="payment",
        key=f"transaction:{txn_id}",
        timestamp=parse_time(get(txn, "billed_at") or get(txn, "created_at"), at),
        amount=as_int(get(totals, "grand_total") or get(totals, "total")),
        currency=str(get(txn, "currency_code", default="")).upper(),
        transaction_id=txn_id,
        refs=[f"transaction:{txn_id}"],
        is_renewal=get(txn, "origin") in ("subscription_recurring", "subscription_update"),
        subscription_id=str(get(txn, "subscription_id", default="") or ""),
        customer_id=str(get(txn, "customer_id", default="") or ""),
        visitor_id=visitor,
        session_id=session,
    )


def _adjustment(adjustment: dict[str, Any], at: Any) -> Incoming | None:
    if get(adjustment, "action") != "refund" or get(adjustment, "status") != "approved":
        return None  # credits and pending or rejected refunds move no money
    txn_id = str(get(adjustment, "transaction_id", default=""))
    return Incoming(
        kind="refund",
        key=f"adjustment:{get(adjustment, 'id', default='')}",
        timestamp=parse_time(get(adjustment, "updated_at") or get(adjustment, "created_at"), at),
        amount=as_int(get(adjustment, "totals", "total")),
        currency=str(get(adjustment, "currency_code", default="")).upper(),
        transaction_id=txn_id,
        refund_of=[f"transaction:{txn_id}"],
        subscription_id=str(get(adjustment, "subscription_id", default="") or ""),
        customer_id=str(get(adjustment, "customer_id", default="") or ""),
    )


def _subscription(delivery: str, sub: dict[str, Any], at: Any) -> SubscriptionState:
    """Every item's unit price times quantity is one billing cycle's amount."""
    items = [i for i in get(sub, "items", default=[]) if isinstance(i, dict)]
    amount = sum(
        as_int(get(i, "price", "unit_price", "amount")) * (as_int(get(i, "quantity")) or 1) for i in items
    )
    cycle = get(sub, "billing_cycle", default={})
    status = str(get(sub, "status", default=""))
    trial = get(items[0], "trial_dates", default={}) if items else {}
    visitor, session = link_ids(get(sub, "custom_data"))
    return SubscriptionState(
        subscription_id=str(get(sub, "id", default="")),
        event_id=delivery,
        at=parse_time(get(sub, "updated_at"), at),
        status="ended" if status == "canceled" else status,
        amount=amount,
        currency=str(get(sub, "currency_code", default="")).upper(),
        interval=str(get(cycle, "interval", default="month")),
        interval_count=as_int(get(cycle, "frequency")) or 1,
        plan=str(get(items[0], "price", "id", default="")) if items else "",
        customer_id=str(get(sub, "customer_id", default="") or ""),
        started_at=maybe_time(get(sub, "started_at")),
        trial_start=maybe_time(get(trial, "starts_at")),
        trial_end=maybe_time(get(trial, "ends_at")),
        canceled_at=maybe_time(get(sub, "canceled_at")),
        ended_at=maybe_time(get(sub, "canceled_at")) if status == "canceled" else None,
        visitor_id=visitor,
        session_id=session,
    )

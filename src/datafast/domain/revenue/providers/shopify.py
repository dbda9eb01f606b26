"""Shopify: ``X-Shopify-Hmac-Sha256`` (base64 HMAC-SHA256 of the raw body), ``orders/paid`` and
``refunds/create``.

No timestamp: replays are stopped by ``X-Shopify-Webhook-Id`` and by the order / refund id.
Visitor ids come from the cart attributes (``note_attributes``). Amounts are decimal strings
in the shop's currency; the presentment money (what the buyer paid in their currency) is
kept as the provider's own conversion.

The signature covers the body only, not ``X-Shopify-Topic``: a signed body replayed under
another topic (an unpaid ``orders/create`` order sent as ``orders/paid``, a refund as an order)
must not count. So the topic has to agree with the signed body's shape: ``orders/paid`` needs an
order (``total_price``, no ``order_id``) whose ``financial_status`` says money was received;
``refunds/create`` needs a refund (``order_id`` and ``transactions``). A mismatch is refused (400).
"""

from __future__ import annotations

import base64
from typing import Any

from datafast.domain.revenue.currency import to_minor
from datafast.domain.revenue.providers._base import (
    BadSignature,
    Incoming,
    Verified,
    decode_json,
    equal,
    get,
    hmac_sha256,
    link_ids,
    parse_time,
)

__all__ = ("ShopifyProvider",)


class ShopifyProvider:
    name = "shopify"

    def verify(self, body: bytes, headers: dict[str, str], secret: str, now: float) -> Verified:
        signature = headers.get("x-shopify-hmac-sha256", "")
        expected = base64.b64encode(hmac_sha256(secret.encode(), body)).decode()
        if not signature or not equal(signature.strip(), expected):
            raise BadSignature("X-Shopify-Hmac-Sha256 does not match the body")
        delivery = headers.get("x-shopify-webhook-id", "") or headers.get("x-shopify-event-id", "")
        if not delivery:
            raise BadSignature("missing X-Shopify-Webhook-Id")
        topic = headers.get("x-shopify-topic", "")
        payload = decode_json(body)
        _check_topic(topic, payload)
        try:
            items = _parse(topic, payload)
        except ValueError as exc:
            raise BadSignature(f"bad amount: {exc}") from None
        return Verified(delivery, topic, items)


PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded"})
"""``financial_status`` values of an order whose money was received (refunds are their own events)."""


def _check_topic(topic: str, data: dict[str, Any]) -> None:
    is_refund = "order_id" in data and isinstance(data.get("transactions"), list)
    is_order = "total_price" in data and "order_id" not in data
    if topic == "orders/paid":
        if not is_order:
            raise BadSignature("X-Shopify-Topic orders/paid does not match the signed body (not an order)")
        if get(data, "financial_status", default="") not in PAID_STATUSES:
            raise BadSignature("X-Shopify-Topic orders/paid does not match the signed body (order not paid)")
    elif topic == "refunds/create" and not is_refund:
        raise BadSignature("X-Shopify-Topic refunds/create does not match the signed body (not a refund)")


def _money(value: Any, currency: str) -> int:
    return to_minor(str(value), currency) if value not in (None, "") else 0


def _parse(topic: str, data: dict[str, Any]) -> list[Incoming]:
    if topic == "orders/paid":
        order_id = str(get(data, "id", default=""))
        currency = str(get(data, "currency", default="")).upper()
        amount = _money(get(data, "total_price"), currency)
        presentment = str(get(data, "presentment_currency", default="")).upper()
        provider_amounts: dict[str, int] = {}
        shown = get(data, "total_price_set", "presentment_money", default={})
        if presentment and presentment != currency and isinstance(shown, dict):
            shown_currency = str(shown.get("currency_code", presentment)).upper()
            provider_amounts[shown_currency] = _money(shown.get("amount"), shown_currency)
        visitor, session = link_ids(get(data, "note_attributes"))
        return [
            Incoming(
                kind="payment",
                key=f"order:{order_id}",
                timestamp=parse_time(get(data, "processed_at") or get(data, "created_at")),
                amount=amount,
                currency=currency,
                transaction_id=order_id,
                refs=[f"order:{order_id}"],
                customer_id=str(get(data, "customer", "id", default="")),
                visitor_id=visitor,
                session_id=session,
                email=str(get(data, "email", default="") or get(data, "customer", "email", default="")),
                provider_amounts=provider_amounts,
            )
        ]
    if topic == "refunds/create":
        refund_id = str(get(data, "id", default=""))
        order_id = str(get(data, "order_id", default=""))
        transactions = [
            t
            for t in get(data, "transactions", default=[])
            if isinstance(t, dict) and t.get("kind") == "refund" and t.get("status") == "success"
        ]
        if not transactions:
            return []
        currency = str(transactions[0].get("currency", "")).upper()
        amount = sum(_money(t.get("amount"), currency) for t in transactions)
        return [
            Incoming(
                kind="refund",
                key=f"refund:{refund_id}",
                timestamp=parse_time(get(data, "created_at") or get(data, "processed_at")),
                amount=amount,
                currency=currency,
                transaction_id=order_id,
                refund_of=[f"order:{order_id}"],
            )
        ]
    return []

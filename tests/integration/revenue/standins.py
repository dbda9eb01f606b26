"""Local stand-ins for the payment providers: payloads shaped as each provider's docs show,
signed exactly as each provider signs (computed here with hmac, independently of the app).

Each stand-in makes :class:`Delivery` objects (raw body + headers) for a payment, its
double-count companion events, a renewal and refunds; amounts are minor units.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class Delivery:
    body: bytes
    headers: dict[str, str]


@dataclass
class Sale:
    """What a stand-in remembers of a payment, to build its refunds and renewals."""

    id: str
    amount: int
    currency: str
    subscription_id: str = ""
    customer_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _id(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:20]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def _metadata(visitor: str | None, session: str | None) -> dict[str, str]:
    out = {}
    if visitor:
        out["datafast_visitor_id"] = visitor
    if session:
        out["datafast_session_id"] = session
    return out


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, indent=2).encode()  # providers send pretty-printed JSON too


class StandIn:
    name: str
    secret: str
    has_timestamp: bool = False
    renews = True

    def sign(self, body: bytes, headers: dict[str, str], *, now: float | None = None) -> Delivery:
        raise NotImplementedError

    def badly_signed(self, delivery: Delivery) -> Delivery:
        """The same delivery signed with another secret."""
        real = self.secret
        self.secret = real[:-4] + "XXXX"
        try:
            return self.resign(delivery)
        finally:
            self.secret = real

    def stale(self, delivery: Delivery) -> Delivery:
        return self.resign(delivery, now=time.time() - 600)

    def resign(self, delivery: Delivery, now: float | None = None) -> Delivery:
        return self.sign(delivery.body, dict(delivery.headers), now=now)

    # what a test asks for
    def payment(
        self,
        amount: int,
        currency: str = "USD",
        *,
        visitor: str | None = None,
        session: str | None = None,
        email: str = "buyer@example.com",
        subscription: bool = False,
        at: datetime | None = None,
    ) -> tuple[Sale, list[Delivery]]:
        """The deliveries a provider sends for one payment (the double-count trap included)."""
        raise NotImplementedError

    def renewal(self, first: Sale, at: datetime | None = None) -> tuple[Sale, list[Delivery]]:
        raise NotImplementedError

    def refund(self, sale: Sale, refunded_so_far: int, this_refund: int) -> list[Delivery]:
        """The deliveries for a refund of ``this_refund`` after ``refunded_so_far`` was refunded."""
        raise NotImplementedError


class Stripe(StandIn):
    name = "stripe"
    has_timestamp = True

    def __init__(self) -> None:
        self.secret = "whsec_" + base64.b64encode(uuid.uuid4().bytes * 2).decode()

    def sign(self, body: bytes, headers: dict[str, str], *, now: float | None = None) -> Delivery:
        t = int(now if now is not None else time.time())
        digest = hmac.new(self.secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return Delivery(
            body, {**headers, "Stripe-Signature": f"t={t},v1={digest}", "Content-Type": "application/json"}
        )

    def event(self, kind: str, obj: dict[str, Any], created: int | None = None) -> Delivery:
        payload = {
            "id": _id("evt_"),
            "object": "event",
            "api_version": "2025-10-29.clover",
            "created": created or int(time.time()),
            "data": {"object": obj},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": _id("req_"), "idempotency_key": str(uuid.uuid4())},
            "type": kind,
        }
        return self.sign(_dumps(payload), {})

    def payment(
        self,
        amount,
        currency="USD",
        *,
        visitor=None,
        session=None,
        email="buyer@example.com",
        subscription=False,
        at=None,
    ):  # type: ignore[no-untyped-def]
        created = int((at or datetime.now(UTC)).timestamp())
        customer = _id("cus_")
        meta = _metadata(visitor, session)
        if not subscription:
            intent = _id("pi_")
            session_obj = {
                "id": _id("cs_test_"),
                "object": "checkout.session",
                "amount_subtotal": amount,
                "amount_total": amount,
                "currency": currency.lower(),
                "customer": customer,
                "customer_details": {"email": email, "name": "Jenny Rosen"},
                "client_reference_id": None,
                "created": created,
                "invoice": None,
                "metadata": meta,
                "mode": "payment",
                "payment_intent": intent,
                "payment_status": "paid",
                "status": "complete",
                "subscription": None,
            }
            intent_obj = {
                "id": intent,
                "object": "payment_intent",
                "amount": amount,
                "amount_received": amount,
                "currency": currency.lower(),
                "customer": customer,
                "created": created,
                "latest_charge": _id("ch_"),
                "metadata": meta,
                "receipt_email": None,
                "status": "succeeded",
            }
            sale = Sale(
                intent, amount, currency, customer_id=customer, extra={"charge": intent_obj["latest_charge"]}
            )
            return sale, [
                self.event("checkout.session.completed", session_obj, created),
                self.event("payment_intent.succeeded", intent_obj, created),
            ]
        sub, invoice, intent = _id("sub_"), _id("in_"), _id("pi_")
        session_obj = {
            "id": _id("cs_test_"),
            "object": "checkout.session",
            "amount_subtotal": amount,
            "amount_total": amount,
            "currency": currency.lower(),
            "customer": customer,
            "customer_details": {"email": email, "name": "Jenny Rosen"},
            "created": created,
            "invoice": invoice,
            "metadata": meta,
            "mode": "subscription",
            "payment_intent": None,
            "payment_status": "paid",
            "status": "complete",
            "subscription": sub,
        }
        invoice_obj = self._invoice(
            invoice, amount, currency, customer, sub, "subscription_create", created, email, meta
        )
        sale = Sale(
            invoice,
            amount,
            currency,
            subscription_id=sub,
            customer_id=customer,
            extra={"charge": _id("ch_"), "intent": intent},
        )
        return sale, [
            self.event("checkout.session.completed", session_obj, created),
            self.event("invoice.paid", invoice_obj, created),
        ]

    def _invoice(self, invoice, amount, currency, customer, sub, reason, created, email, meta):  # type: ignore[no-untyped-def]
        return {
            "id": invoice,
            "object": "invoice",
            "amount_due": amount,
            "amount_paid": amount,
            "amount_remaining": 0,
            "billing_reason": reason,
            "currency": currency.lower(),
            "customer": customer,
            "customer_email": email,
            "created": created,
            "status": "paid",
            "status_transitions": {"paid_at": created, "finalized_at": created},
            "parent": {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"metadata": meta, "subscription": sub},
            },
        }

    def renewal(self, first, at=None):  # type: ignore[no-untyped-def]
        created = int((at or datetime.now(UTC)).timestamp())
        invoice = _id("in_")
        # The subscription's metadata snapshot is empty here: the visitor must come from the first payment.
        obj = self._invoice(
            invoice,
            first.amount,
            first.currency,
            first.customer_id,
            first.subscription_id,
            "subscription_cycle",
            created,
            "buyer@example.com",
            {},
        )
        return Sale(
            invoice,
            first.amount,
            first.currency,
            first.subscription_id,
            first.customer_id,
            extra={"charge": _id("ch_")},
        ), [self.event("invoice.paid", obj, created)]

    def subscription(
        self,
        kind: str,
        sale: Sale,
        status: str,
        amount: int,
        at: datetime,
        *,
        interval: str = "month",
        interval_count: int = 1,
        quantity: int = 1,
        trial: tuple[datetime, datetime] | None = None,
        canceled_at: datetime | None = None,
        ended_at: datetime | None = None,
        metadata: dict[str, str] | None = None,
        started: datetime | None = None,
    ) -> Delivery:
        """``customer.subscription.<kind>`` with the Subscription object as Stripe's API reference
        shows it (price and period on the items since 2025-03-31); ``amount`` is the unit price."""
        created = int(at.timestamp())
        start = int((started or at).timestamp())
        price = {
            "id": sale.extra.setdefault("price", _id("price_")),
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "currency": sale.currency.lower(),
            "product": sale.extra.setdefault("product", _id("prod_")),
            "recurring": {"interval": interval, "interval_count": interval_count, "usage_type": "licensed"},
            "type": "recurring",
            "unit_amount": amount,
            "unit_amount_decimal": str(amount),
        }
        item = {
            "id": sale.extra.setdefault("item", _id("si_")),
            "object": "subscription_item",
            "created": start,
            "current_period_start": created,
            "current_period_end": created + 30 * 86400,
            "metadata": {},
            "price": price,
            "quantity": quantity,
            "subscription": sale.subscription_id,
        }
        obj = {
            "id": sale.subscription_id,
            "object": "subscription",
            "billing_cycle_anchor": start,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": int(canceled_at.timestamp()) if canceled_at else None,
            "collection_method": "charge_automatically",
            "created": start,
            "currency": sale.currency.lower(),
            "customer": sale.customer_id,
            "ended_at": int(ended_at.timestamp()) if ended_at else None,
            "items": {
                "object": "list",
                "data": [item],
                "has_more": False,
                "total_count": 1,
                "url": f"/v1/subscription_items?subscription={sale.subscription_id}",
            },
            "latest_invoice": sale.id,
            "livemode": False,
            "metadata": metadata or {},
            "pause_collection": None,
            "start_date": start,
            "status": status,
            "trial_end": int(trial[1].timestamp()) if trial else None,
            "trial_start": int(trial[0].timestamp()) if trial else None,
        }
        return self.event(f"customer.subscription.{kind}", obj, created)

    def refund(self, sale, refunded_so_far, this_refund, at=None):  # type: ignore[no-untyped-def]
        charge = sale.extra["charge"]
        total = refunded_so_far + this_refund
        created = int(at.timestamp()) if at else int(time.time())
        refund_obj = {
            "id": _id("re_"),
            "object": "refund",
            "amount": this_refund,
            "charge": charge,
            "currency": sale.currency.lower(),
            "payment_intent": sale.extra.get("intent", sale.id),
            "status": "succeeded",
            "created": created,
        }
        charge_obj = {
            "id": charge,
            "object": "charge",
            "amount": sale.amount,
            "amount_captured": sale.amount,
            "amount_refunded": total,
            "currency": sale.currency.lower(),
            "payment_intent": sale.extra.get("intent", sale.id) if not sale.id.startswith("in_") else None,
            "refunded": total == sale.amount,
            "metadata": {},
            "created": created,
            "billing_details": {"email": None},
        }
        if sale.id.startswith("in_"):
            charge_obj["invoice"] = sale.id  # older API versions name the invoice on the charge
        return [
            self.event("refund.created", refund_obj, created),
            self.event("charge.refunded", charge_obj, created),
        ]


class LemonSqueezy(StandIn):
    name = "lemonsqueezy"

    def __init__(self) -> None:
        self.secret = "ls-" + uuid.uuid4().hex[:20]
        self._orders = 1000 + int(time.time() * 1000) % 100000

    def sign(self, body: bytes, headers: dict[str, str], *, now: float | None = None) -> Delivery:
        digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return Delivery(body, {**headers, "X-Signature": digest, "Content-Type": "application/json"})

    def stale(self, delivery: Delivery) -> Delivery:  # no timestamp in this scheme
        raise NotImplementedError

    def _next(self) -> str:
        self._orders += 1
        return str(self._orders)

    def _send(self, event: str, data: dict[str, Any], custom: dict[str, str]) -> Delivery:
        meta: dict[str, Any] = {"test_mode": True, "event_name": event, "webhook_id": str(uuid.uuid4())}
        if custom:
            meta["custom_data"] = custom
        return self.sign(_dumps({"meta": meta, "data": data}), {"X-Event-Name": event})

    def _order(self, order_id, amount, currency, customer, email, at, **changes):  # type: ignore[no-untyped-def]
        rate = 1.0 if currency == "USD" else 1.25
        attributes = {
            "store_id": 1,
            "customer_id": customer,
            "identifier": str(uuid.uuid4()),
            "order_number": int(order_id),
            "user_name": "Luke Skywalker",
            "user_email": email,
            "currency": currency,
            "currency_rate": f"{rate:.8f}",
            "subtotal": amount,
            "discount_total": 0,
            "tax": 0,
            "total": amount,
            "subtotal_usd": round(amount * rate),
            "discount_total_usd": 0,
            "tax_usd": 0,
            "total_usd": round(amount * rate),
            "tax_name": None,
            "tax_rate": "0.00",
            "status": "paid",
            "status_formatted": "Paid",
            "refunded": False,
            "refunded_at": None,
            "refunded_amount": 0,
            "created_at": _iso(at),
            "updated_at": _iso(at),
        }
        attributes.update(changes)
        return {"type": "orders", "id": order_id, "attributes": attributes}

    def _invoice(self, invoice_id, sale, reason, at, **changes):  # type: ignore[no-untyped-def]
        attributes = {
            "store_id": 1,
            "subscription_id": int(sale.subscription_id),
            "customer_id": sale.customer_id,
            "user_name": "Luke Skywalker",
            "user_email": "buyer@example.com",
            "billing_reason": reason,
            "card_brand": "visa",
            "card_last_four": "4242",
            "currency": sale.currency,
            "currency_rate": "1.00000000",
            "status": "paid",
            "status_formatted": "Paid",
            "refunded": False,
            "refunded_at": None,
            "subtotal": sale.amount,
            "discount_total": 0,
            "tax": 0,
            "total": sale.amount,
            "refunded_amount": 0,
            "subtotal_usd": sale.amount,
            "discount_total_usd": 0,
            "tax_usd": 0,
            "total_usd": sale.amount,
            "refunded_amount_usd": 0,
            "created_at": _iso(at),
            "updated_at": _iso(at),
        }
        attributes.update(changes)
        return {"type": "subscription-invoices", "id": invoice_id, "attributes": attributes}

    def payment(
        self,
        amount,
        currency="USD",
        *,
        visitor=None,
        session=None,
        email="buyer@example.com",
        subscription=False,
        at=None,
    ):  # type: ignore[no-untyped-def]
        at = at or datetime.now(UTC)
        order_id, customer = self._next(), int(self._next())
        custom = _metadata(visitor, session)
        sale = Sale(order_id, amount, currency, customer_id=str(customer))
        deliveries = [
            self._send("order_created", self._order(order_id, amount, currency, customer, email, at), custom)
        ]
        if subscription:
            sale.subscription_id = self._next()
            sale.customer_id = str(customer)
            initial = self._invoice(self._next(), sale, "initial", at)
            deliveries.append(self._send("subscription_payment_success", initial, custom))
        return sale, deliveries

    def renewal(self, first, at=None, amount=None):  # type: ignore[no-untyped-def]
        at = at or datetime.now(UTC)
        amount = first.amount if amount is None else amount
        invoice_id = self._next()
        data = self._invoice(
            invoice_id,
            Sale(invoice_id, amount, first.currency, first.subscription_id, first.customer_id),
            "renewal",
            at,
        )
        sale = Sale(
            invoice_id,
            amount,
            first.currency,
            first.subscription_id,
            first.customer_id,
            extra={"invoice": True},
        )
        return sale, [self._send("subscription_payment_success", data, {})]

    def subscription(
        self,
        event: str,
        sale: Sale,
        status: str,
        at: datetime,
        *,
        created: datetime,
        renews_at: datetime | None,
        trial_ends_at: datetime | None = None,
        ends_at: datetime | None = None,
        variant: str = "Monthly",
        custom: dict[str, str] | None = None,
    ) -> Delivery:
        """``subscription_<event>`` with the Subscription object of Lemon Squeezy's API reference
        (no price: that is on the variant's Price)."""
        data = {
            "type": "subscriptions",
            "id": sale.subscription_id,
            "attributes": {
                "store_id": 1,
                "customer_id": int(sale.customer_id),
                "order_id": int(sale.id),
                "order_item_id": int(sale.id) + 7,
                "product_id": 11,
                "variant_id": 22 if variant == "Monthly" else 23,
                "product_name": "Pro",
                "variant_name": variant,
                "user_name": "Luke Skywalker",
                "user_email": "buyer@example.com",
                "status": status,
                "status_formatted": status.replace("_", " ").title(),
                "card_brand": "visa",
                "card_last_four": "4242",
                "payment_processor": "stripe",
                "pause": {"mode": "void", "resumes_at": None} if status == "paused" else None,
                "cancelled": status == "cancelled",
                "trial_ends_at": _iso(trial_ends_at) if trial_ends_at else None,
                "billing_anchor": created.day,
                "first_subscription_item": {
                    "id": int(sale.subscription_id) + 1,
                    "subscription_id": int(sale.subscription_id),
                    "price_id": 33,
                    "quantity": 1,
                    "is_usage_based": False,
                    "created_at": _iso(created),
                    "updated_at": _iso(at),
                },
                "urls": {
                    "update_payment_method": "https://example.test/u",
                    "customer_portal": "https://example.test/p",
                },
                "renews_at": _iso(renews_at) if renews_at else None,
                "ends_at": _iso(ends_at) if ends_at else None,
                "created_at": _iso(created),
                "updated_at": _iso(at),
                "test_mode": True,
            },
        }
        return self._send(f"subscription_{event}", data, custom or {})

    def refund(self, sale, refunded_so_far, this_refund, at=None):  # type: ignore[no-untyped-def]
        total = refunded_so_far + this_refund
        now = at or datetime.now(UTC)
        if sale.extra.get("invoice"):
            data = self._invoice(
                sale.id,
                sale,
                "renewal",
                now,
                refunded=total == sale.amount,
                refunded_at=_iso(now),
                refunded_amount=total,
            )
            return [self._send("subscription_payment_refunded", data, {})]
        data = self._order(
            sale.id,
            sale.amount,
            sale.currency,
            int(sale.customer_id),
            "buyer@example.com",
            now,
            status="refunded" if total == sale.amount else "partial_refund",
            refunded=total == sale.amount,
            refunded_at=_iso(now),
            refunded_amount=total,
        )
        return [self._send("order_refunded", data, {})]


class Polar(StandIn):
    name = "polar"
    has_timestamp = True

    def __init__(self) -> None:
        self.secret = "polar_whs_" + base64.urlsafe_b64encode(uuid.uuid4().bytes * 2).decode().rstrip("=")

    def sign(self, body: bytes, headers: dict[str, str], *, now: float | None = None) -> Delivery:
        msg_id = headers.get("webhook-id") or "msg_" + uuid.uuid4().hex
        ts = str(int(now if now is not None else time.time()))
        signed = f"{msg_id}.{ts}.".encode() + body
        # Standard Webhooks, with the full polar_whs_ secret's UTF-8 bytes as the key (REVENUE.md).
        signature = base64.b64encode(hmac.new(self.secret.encode(), signed, hashlib.sha256).digest()).decode()
        return Delivery(
            body,
            {
                **headers,
                "webhook-id": msg_id,
                "webhook-timestamp": ts,
                "webhook-signature": f"v1,{signature}",
                "Content-Type": "application/json",
            },
        )

    def _send(self, kind: str, data: dict[str, Any]) -> Delivery:
        payload = {"type": kind, "timestamp": _iso(datetime.now(UTC)), "data": data}
        return self.sign(_dumps(payload), {})

    def _order(self, order_id, amount, currency, reason, sub, customer, meta, at, **changes):  # type: ignore[no-untyped-def]
        data = {
            "id": order_id,
            "created_at": _iso(at),
            "modified_at": _iso(at),
            "status": "paid",
            "paid": True,
            "subtotal_amount": amount,
            "discount_amount": 0,
            "net_amount": amount,
            "tax_amount": 0,
            "total_amount": amount,
            "refunded_amount": 0,
            "refunded_tax_amount": 0,
            "currency": currency.lower(),
            "billing_reason": reason,
            "customer_id": customer,
            "product_id": str(uuid.uuid4()),
            "discount_id": None,
            "subscription_id": sub or None,
            "checkout_id": str(uuid.uuid4()),
            "metadata": meta,
            "customer": {"id": customer, "email": "buyer@example.com", "name": "Ada", "metadata": {}},
        }
        data.update(changes)
        return data

    def payment(
        self,
        amount,
        currency="USD",
        *,
        visitor=None,
        session=None,
        email="buyer@example.com",
        subscription=False,
        at=None,
    ):  # type: ignore[no-untyped-def]
        at = at or datetime.now(UTC)
        order_id, customer = str(uuid.uuid4()), str(uuid.uuid4())
        sub = str(uuid.uuid4()) if subscription else ""
        reason = "subscription_create" if subscription else "purchase"
        meta = _metadata(visitor, session)
        sale = Sale(order_id, amount, currency, sub, customer, extra={"meta": meta})
        return sale, [
            self._send("order.paid", self._order(order_id, amount, currency, reason, sub, customer, meta, at))
        ]

    def renewal(self, first, at=None):  # type: ignore[no-untyped-def]
        at = at or datetime.now(UTC)
        order_id = str(uuid.uuid4())
        # Renewal orders carry the subscription's metadata; send none to prove inheritance.
        data = self._order(
            order_id,
            first.amount,
            first.currency,
            "subscription_cycle",
            first.subscription_id,
            first.customer_id,
            {},
            at,
        )
        return Sale(order_id, first.amount, first.currency, first.subscription_id, first.customer_id), [
            self._send("order.paid", data)
        ]

    def subscription(
        self,
        kind: str,
        sale: Sale,
        status: str,
        amount: int,
        at: datetime,
        *,
        interval: str = "month",
        interval_count: int = 1,
        quantity: int = 1,
        trial: tuple[datetime, datetime] | None = None,
        canceled_at: datetime | None = None,
        ended_at: datetime | None = None,
        metadata: dict[str, str] | None = None,
        started: datetime | None = None,
    ) -> Delivery:
        """``subscription.<kind>`` with the Subscription schema of Polar's API reference;
        ``amount`` is the price of one interval (Polar has no quantities on fixed prices)."""
        product = sale.extra.setdefault("product", str(uuid.uuid4()))
        data = {
            "id": sale.subscription_id,
            "created_at": _iso(started or at),
            "modified_at": _iso(at),
            "amount": amount * quantity,
            "currency": sale.currency.lower(),
            "recurring_interval": interval,
            "recurring_interval_count": interval_count,
            "status": status,
            "current_period_start": _iso(at),
            "current_period_end": None,
            "trial_start": _iso(trial[0]) if trial else None,
            "trial_end": _iso(trial[1]) if trial else None,
            "cancel_at_period_end": False,
            "canceled_at": _iso(canceled_at) if canceled_at else None,
            "started_at": _iso(started or at),
            "ends_at": _iso(ended_at) if ended_at else None,
            "ended_at": _iso(ended_at) if ended_at else None,
            "customer_id": sale.customer_id,
            "product_id": product,
            "discount_id": None,
            "checkout_id": str(uuid.uuid4()),
            "customer_cancellation_reason": None,
            "customer_cancellation_comment": None,
            "metadata": metadata or {},
            "custom_field_data": {},
            "customer": {"id": sale.customer_id, "email": "buyer@example.com", "name": "Ada", "metadata": {}},
            "product": {"id": product, "name": "Pro", "is_recurring": True, "metadata": {}},
            "discount": None,
            "prices": [],
            "meters": [],
        }
        return self._send(f"subscription.{kind}", data)

    def refund(self, sale, refunded_so_far, this_refund, at=None):  # type: ignore[no-untyped-def]
        total = refunded_so_far + this_refund
        now = at or datetime.now(UTC)
        refund = {
            "id": str(uuid.uuid4()),
            "created_at": _iso(now),
            "status": "succeeded",
            "reason": "customer_request",
            "amount": this_refund,
            "tax_amount": 0,
            "currency": sale.currency.lower(),
            "order_id": sale.id,
            "subscription_id": sale.subscription_id or None,
            "customer_id": sale.customer_id,
            "metadata": {},
        }
        order = self._order(
            sale.id,
            sale.amount,
            sale.currency,
            "purchase",
            sale.subscription_id,
            sale.customer_id,
            sale.extra.get("meta", {}),
            now,
            status="refunded" if total == sale.amount else "partially_refunded",
            refunded_amount=total,
        )
        return [self._send("refund.created", refund), self._send("order.refunded", order)]


class Shopify(StandIn):
    name = "shopify"
    renews = False

    def __init__(self) -> None:
        self.secret = "shpss_" + uuid.uuid4().hex
        self._ids = int(time.time() * 1000) * 1000

    def _next(self) -> int:
        self._ids += 1
        return self._ids

    def sign(self, body: bytes, headers: dict[str, str], *, now: float | None = None) -> Delivery:
        digest = base64.b64encode(hmac.new(self.secret.encode(), body, hashlib.sha256).digest()).decode()
        headers = {"X-Shopify-Webhook-Id": str(uuid.uuid4()), **headers}
        return Delivery(
            body,
            {
                **headers,
                "X-Shopify-Hmac-Sha256": digest,
                "Content-Type": "application/json",
                "X-Shopify-Shop-Domain": "shop.myshopify.com",
                "X-Shopify-API-Version": "2025-10",
            },
        )

    def stale(self, delivery: Delivery) -> Delivery:
        raise NotImplementedError

    @staticmethod
    def money(amount: int, currency: str) -> str:
        from datafast.domain.revenue.currency import exponent

        digits = exponent(currency)
        return f"{amount / 10**digits:.{digits}f}"

    def payment(
        self,
        amount,
        currency="USD",
        *,
        visitor=None,
        session=None,
        email="buyer@example.com",
        subscription=False,
        at=None,
        presentment: tuple[int, str] | None = None,
    ):  # type: ignore[no-untyped-def]
        at = at or datetime.now(UTC)
        order_id = self._next()
        shown_amount, shown_currency = presentment or (amount, currency)
        note = [{"name": k, "value": v} for k, v in _metadata(visitor, session).items()]
        order = {
            "id": order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "email": email,
            "created_at": at.isoformat(),
            "processed_at": at.isoformat(),
            "currency": currency,
            "presentment_currency": shown_currency,
            "financial_status": "paid",
            "total_price": self.money(amount, currency),
            "subtotal_price": self.money(amount, currency),
            "total_price_set": {
                "shop_money": {"amount": self.money(amount, currency), "currency_code": currency},
                "presentment_money": {
                    "amount": self.money(shown_amount, shown_currency),
                    "currency_code": shown_currency,
                },
            },
            "note_attributes": [*note, {"name": "gift_wrap", "value": "no"}],
            "landing_site": "/?utm_source=google",
            "referring_site": "https://www.google.com/",
            "customer": {"id": self._next(), "email": email},
        }
        sale = Sale(str(order_id), amount, currency)
        return sale, [self.sign(_dumps(order), {"X-Shopify-Topic": "orders/paid"})]

    def refund(self, sale, refunded_so_far, this_refund):  # type: ignore[no-untyped-def]
        refund_id = self._next()
        body = {
            "id": refund_id,
            "order_id": int(sale.id),
            "created_at": datetime.now(UTC).isoformat(),
            "note": "",
            "restock": False,
            "refund_line_items": [],
            "transactions": [
                {
                    "id": self._next(),
                    "order_id": int(sale.id),
                    "kind": "refund",
                    "gateway": "bogus",
                    "status": "success",
                    "amount": self.money(this_refund, sale.currency),
                    "currency": sale.currency,
                },
                {
                    "id": self._next(),
                    "order_id": int(sale.id),
                    "kind": "refund",
                    "gateway": "bogus",
                    "status": "failure",
                    "amount": self.money(this_refund, sale.currency),
                    "currency": sale.currency,
                },
            ],
        }
        return [self.sign(_dumps(body), {"X-Shopify-Topic": "refunds/create"})]


class Paddle(StandIn):
    """Paddle Billing: notifications as its webhook reference shows them (``event_id``,
    ``notification_id``, ``event_type``, ``occurred_at``, ``data``), signed
    ``Paddle-Signature: ts=…;h1=hex(HMAC-SHA256(secret, f"{ts}:" + body))``."""

    name = "paddle"
    has_timestamp = True

    def __init__(self) -> None:
        self.secret = "pdl_ntfset_01" + uuid.uuid4().hex[:24] + "_" + uuid.uuid4().hex

    def sign(self, body: bytes, headers: dict[str, str], *, now: float | None = None) -> Delivery:
        ts = str(int(now if now is not None else time.time()))
        digest = hmac.new(self.secret.encode(), f"{ts}:".encode() + body, hashlib.sha256).hexdigest()
        return Delivery(
            body, {**headers, "Paddle-Signature": f"ts={ts};h1={digest}", "Content-Type": "application/json"}
        )

    def _send(self, kind: str, data: dict[str, Any], at: datetime | None = None) -> Delivery:
        payload = {
            "event_id": _id("evt_01"),
            "event_type": kind,
            "occurred_at": _iso(at or datetime.now(UTC)),
            "notification_id": _id("ntf_01"),
            "data": data,
        }
        return self.sign(_dumps(payload), {})

    def _transaction(self, txn_id, amount, currency, origin, sub, customer, custom, at, status="completed"):  # type: ignore[no-untyped-def]
        money = str(amount)
        return {
            "id": txn_id,
            "status": status,
            "customer_id": customer,
            "address_id": _id("add_01"),
            "business_id": None,
            "custom_data": custom or None,
            "currency_code": currency,
            "origin": origin,
            "subscription_id": sub or None,
            "invoice_id": _id("inv_01"),
            "invoice_number": "325-10566",
            "collection_mode": "automatic",
            "discount_id": None,
            "billing_details": None,
            "billing_period": {"starts_at": _iso(at), "ends_at": _iso(at)} if sub else None,
            "items": [{"price": {"id": _id("pri_01")}, "quantity": 1}],
            "details": {
                "tax_rates_used": [],
                "totals": {
                    "subtotal": money,
                    "tax": "0",
                    "discount": "0",
                    "total": money,
                    "credit": "0",
                    "credit_to_balance": "0",
                    "balance": "0",
                    "grand_total": money,
                    "fee": None,
                    "earnings": None,
                    "currency_code": currency,
                },
                "line_items": [],
            },
            "payments": [
                {
                    "amount": money,
                    "status": "captured",
                    "created_at": _iso(at),
                    "captured_at": _iso(at),
                    "payment_attempt_id": str(uuid.uuid4()),
                    "stored_payment_method_id": str(uuid.uuid4()),
                    "method_details": {"type": "card"},
                }
            ],
            "checkout": {"url": "https://example.com/pay?_ptxn=" + txn_id},
            "created_at": _iso(at),
            "updated_at": _iso(at),
            "billed_at": _iso(at),
        }

    def payment(
        self,
        amount,
        currency="USD",
        *,
        visitor=None,
        session=None,
        email="buyer@example.com",
        subscription=False,
        at=None,
    ):  # type: ignore[no-untyped-def]
        at = at or datetime.now(UTC)
        txn, customer = _id("txn_01"), _id("ctm_01")
        sub = _id("sub_01") if subscription else ""
        custom = _metadata(visitor, session)
        data = self._transaction(txn, amount, currency, "web", sub, customer, custom, at)
        sale = Sale(txn, amount, currency, sub, customer)
        # Paddle also notifies transaction.paid for the same money (order is not guaranteed).
        paid = self._transaction(txn, amount, currency, "web", sub, customer, custom, at, status="paid")
        return sale, [self._send("transaction.completed", data, at), self._send("transaction.paid", paid, at)]

    def renewal(self, first, at=None):  # type: ignore[no-untyped-def]
        at = at or datetime.now(UTC)
        txn = _id("txn_01")
        data = self._transaction(
            txn,
            first.amount,
            first.currency,
            "subscription_recurring",
            first.subscription_id,
            first.customer_id,
            {},
            at,
        )
        return Sale(txn, first.amount, first.currency, first.subscription_id, first.customer_id), [
            self._send("transaction.completed", data, at)
        ]

    def refund(self, sale, refunded_so_far, this_refund, at=None):  # type: ignore[no-untyped-def]
        """A refund is created pending Paddle's approval, then updated to approved."""
        at = at or datetime.now(UTC)
        adjustment = {
            "id": _id("adj_01"),
            "action": "refund",
            "type": "partial" if refunded_so_far + this_refund < sale.amount else "full",
            "transaction_id": sale.id,
            "subscription_id": sale.subscription_id or None,
            "customer_id": sale.customer_id,
            "reason": "requested by customer",
            "credit_applied_to_balance": None,
            "currency_code": sale.currency,
            "status": "pending_approval",
            "items": [],
            "totals": {
                "subtotal": str(this_refund),
                "tax": "0",
                "total": str(this_refund),
                "fee": "0",
                "earnings": str(this_refund),
                "currency_code": sale.currency,
            },
            "payout_totals": None,
            "created_at": _iso(at),
            "updated_at": _iso(at),
        }
        approved = {**adjustment, "status": "approved"}
        return [
            self._send("adjustment.created", adjustment, at),
            self._send("adjustment.updated", approved, at),
        ]

    def subscription(
        self,
        kind: str,
        sale: Sale,
        status: str,
        amount: int,
        at: datetime,
        *,
        interval: str = "month",
        interval_count: int = 1,
        quantity: int = 1,
        trial: tuple[datetime, datetime] | None = None,
        canceled_at: datetime | None = None,
        ended_at: datetime | None = None,
        metadata: dict[str, str] | None = None,
        started: datetime | None = None,
    ) -> Delivery:
        """``subscription.<kind>`` with the Subscription entity of Paddle's API reference."""
        cycle = {"interval": interval, "frequency": interval_count}
        price = {
            "id": sale.extra.setdefault("price", _id("pri_01")),
            "product_id": sale.extra.setdefault("product", _id("pro_01")),
            "description": "Pro",
            "billing_cycle": cycle,
            "trial_period": {"interval": "day", "frequency": 14} if trial else None,
            "unit_price": {"amount": str(amount), "currency_code": sale.currency},
            "status": "active",
        }
        data = {
            "id": sale.subscription_id,
            "status": status,
            "customer_id": sale.customer_id,
            "address_id": _id("add_01"),
            "business_id": None,
            "currency_code": sale.currency,
            "created_at": _iso(started or at),
            "updated_at": _iso(at),
            "started_at": _iso(started or at),
            "first_billed_at": _iso(trial[1] if trial else (started or at)),
            "next_billed_at": None if status == "canceled" else _iso(at),
            "paused_at": _iso(at) if status == "paused" else None,
            "canceled_at": _iso(canceled_at) if canceled_at else None,
            "collection_mode": "automatic",
            "billing_details": None,
            "current_billing_period": None
            if status == "canceled"
            else {"starts_at": _iso(at), "ends_at": _iso(at)},
            "billing_cycle": cycle,
            "scheduled_change": None,
            "items": [
                {
                    "status": "trialing" if status == "trialing" else "active",
                    "quantity": quantity,
                    "recurring": True,
                    "created_at": _iso(started or at),
                    "updated_at": _iso(at),
                    "previously_billed_at": None,
                    "next_billed_at": None,
                    "trial_dates": {"starts_at": _iso(trial[0]), "ends_at": _iso(trial[1])}
                    if trial
                    else None,
                    "price": price,
                }
            ],
            "custom_data": metadata or None,
            "management_urls": {"update_payment_method": None, "cancel": "https://example.com/cancel"},
            "discount": None,
        }
        return self._send(f"subscription.{kind}", data, at)


STAND_INS = {cls.name: cls for cls in (Stripe, LemonSqueezy, Polar, Shopify, Paddle)}

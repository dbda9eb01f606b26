"""A local stand-in for the parts of the Stripe API DataFast's billing calls, and Stripe's side of
the billing webhooks (events as Stripe shapes them, signed as Stripe signs them).

Endpoints (form-encoded bodies with bracketed keys, as the ``stripe`` package sends them;
https://docs.stripe.com/api): ``POST /v1/customers``, ``POST /v1/checkout/sessions``,
``POST /v1/billing_portal/sessions``. Required parameters are checked as Stripe does, and
errors come back in Stripe's ``{"error": {...}}`` shape with status 400.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

WEBHOOK_SECRET = "whsec_test_billing_0123456789abcdef"
SECRET_KEY = "sk_test_billing_standin"
PLANS = [
    {"name": "starter", "monthly_price": "price_starter_m", "yearly_price": "price_starter_y",
     "events": 100, "sites": 1, "seats": 1, "retention_days": 365},
    {"name": "growth", "monthly_price": "price_growth_m", "yearly_price": "price_growth_y",
     "events": 10000, "sites": 3, "seats": 5, "retention_days": 730},
]  # fmt: skip


def nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``line_items[0][price]=x`` → ``{"line_items": {"0": {"price": "x"}}}``."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return root


class StripeStandIn:
    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.customers: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                params = nest(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
                standin.requests.append((self.path, params, dict(self.headers)))
                if self.headers.get("authorization") != f"Bearer {SECRET_KEY}":
                    status, body = 401, _error("Invalid API Key provided", None, "authentication_error")
                else:
                    status, body = standin.handle(self.path, params)
                self._send(status, body)

            def do_GET(self) -> None:
                """The hosted Checkout / Portal pages a browser is sent to (a customer pays there)."""
                page = b"<!doctype html><title>Stripe stand-in</title><h1>Stripe stand-in</h1>"
                self.send_response(200 if self.path.startswith(("/c/pay/", "/p/session/")) else 404)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("request-id", f"req_{next(standin._ids)}")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> StripeStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:14]}"  # unique across tests sharing a database

    def handle(self, path: str, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        now = int(time.time())
        if path == "/v1/customers":
            customer = {"id": self._id("cus"), "object": "customer", "created": now, "email": p.get("email"),
                        "metadata": p.get("metadata", {}), "livemode": False}  # fmt: skip
            self.customers[customer["id"]] = customer
            return 200, customer
        if path == "/v1/checkout/sessions":
            if p.get("mode") != "subscription" and "mode" not in p:
                return 400, _error("Missing required param: mode.", "mode")
            items = p.get("line_items") or {}
            if not items or not all("price" in item for item in items.values()):
                return 400, _error("Missing required param: line_items[0][price].", "line_items")
            if not p.get("success_url"):
                return 400, _error("Missing required param: success_url.", "success_url")
            if p.get("customer") and p["customer"] not in self.customers:
                return 400, _error(
                    f"No such customer: '{p['customer']}'", "customer", code="resource_missing"
                )
            session_id = self._id("cs_test")
            session = {
                "id": session_id, "object": "checkout.session", "created": now, "mode": p["mode"],
                "status": "open", "payment_status": "unpaid", "customer": p.get("customer"),
                "client_reference_id": p.get("client_reference_id"), "metadata": p.get("metadata", {}),
                "success_url": p["success_url"], "cancel_url": p.get("cancel_url"),
                "url": f"{self.url}/c/pay/{session_id}", "subscription": None,
                "line_items_prices": [item["price"] for item in items.values()],
                "subscription_metadata": (p.get("subscription_data") or {}).get("metadata", {}),
            }  # fmt: skip
            self.sessions[session_id] = session
            public = {
                k: v for k, v in session.items() if k not in ("line_items_prices", "subscription_metadata")
            }
            return 200, public
        if path == "/v1/billing_portal/sessions":
            if p.get("customer") not in self.customers:
                return 400, _error(
                    f"No such customer: '{p.get('customer')}'", "customer", code="resource_missing"
                )
            portal_id = self._id("bps")
            return 200, {"id": portal_id, "object": "billing_portal.session", "created": now,
                         "customer": p["customer"], "return_url": p.get("return_url"),
                         "url": f"{self.url}/p/session/{portal_id}", "livemode": False}  # fmt: skip
        return 404, _error(f"Unrecognized request URL (POST: {path}).", None)


def _error(
    message: str, param: str | None, kind: str = "invalid_request_error", code: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if param:
        error["param"] = param
    if code:
        error["code"] = code
    return {"error": error}


# Stripe's side of the webhooks -------------------------------------------------------------


_events = itertools.count(1)


def event(kind: str, obj: dict[str, Any], created: int, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{next(_events):08d}{int(time.time() * 1000) % 100000}",
        "object": "event",
        "api_version": "2025-08-27.basil",
        "created": created,
        "type": kind,
        "livemode": False,
        "pending_webhooks": 1,
        "data": {"object": obj},
    }


def subscription(
    sub_id: str, customer: str, price: str, status: str, period_start: int, period_end: int, user_id: str
) -> dict[str, Any]:
    """A Subscription as current API versions send it (the period on the item)."""
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "metadata": {"datafast_user_id": user_id},
        "cancel_at_period_end": False,
        "canceled_at": None,
        "trial_end": None,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": "si_" + sub_id[4:],
                    "object": "subscription_item",
                    "price": {"id": price, "object": "price", "recurring": {"interval": "month"}},
                    "quantity": 1,
                    "current_period_start": period_start,
                    "current_period_end": period_end,
                }
            ],
        },
    }


def invoice(
    inv_id: str, customer: str, sub_id: str, status: str, reason: str = "subscription_cycle"
) -> dict[str, Any]:
    return {
        "id": inv_id,
        "object": "invoice",
        "customer": customer,
        "status": status,
        "billing_reason": reason,
        "amount_due": 1900,
        "amount_paid": 1900 if status == "paid" else 0,
        "currency": "usd",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub_id, "metadata": {}},
        },
    }


def sign(body: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """``Stripe-Signature`` as Stripe makes it: HMAC-SHA256 of ``"{t}." + body`` keyed by the whole secret."""
    t = at if at is not None else int(time.time())
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def signed(evt: dict[str, Any], secret: str = WEBHOOK_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(evt).encode()
    return body, {"stripe-signature": sign(body, secret), "content-type": "application/json"}

"""A local stand-in for the part of Stripe's API the history import reads: the list endpoints
``GET /v1/checkout/sessions``, ``/v1/invoices``, ``/v1/charges`` and ``/v1/subscriptions`` as
Stripe documents them (``object: "list"``, ``data`` newest first, ``has_more``, the
``starting_after`` cursor, ``limit``, ``created[gte]``, ``status``), behind a Bearer API key
(401 with Stripe's error body otherwise). Its objects are the ``data.object`` of the webhook
events the revenue stand-ins (``standins.Stripe``) make, so both paths see the same payments.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.integration.revenue.list_apis import ListAPI
from tests.integration.revenue.standins import Delivery

PATHS = {
    "/v1/checkout/sessions": "checkout.session.completed",
    "/v1/invoices": "invoice.paid",
    "/v1/charges": "charge.refunded",
    "/v1/subscriptions": "customer.subscription.",
}


class StripeListAPI(ListAPI):
    paths = tuple(PATHS)
    headers = {"Request-Id": "req_standin"}

    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.pages_served = 0
        self.paused = threading.Event()
        """Set by the test: serving the second page of Checkout Sessions waits for ``resume``."""
        self.reached = threading.Event()
        self.resume = threading.Event()

    def __exit__(self, *exc: object) -> None:
        self.resume.set()
        super().__exit__(*exc)

    def add(self, deliveries: list[Delivery]) -> None:
        """File each event's object under the list that shows it (a subscription: its latest)."""
        for delivery in deliveries:
            event = json.loads(delivery.body)
            for path, kind in PATHS.items():
                if event["type"] == kind or (kind.endswith(".") and event["type"].startswith(kind)):
                    obj = event["data"]["object"]
                    self.objects[path][obj["id"]] = obj

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            error = {"type": "invalid_request_error", "message": "Invalid API Key provided: rk_****"}
            return self.reply(handler, 401, {"error": error})
        parts = urlsplit(handler.path)
        if parts.path not in PATHS:
            return self.reply(
                handler, 404, {"error": {"type": "invalid_request_error", "message": "No such path"}}
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        since = int(query.get("created[gte]", "0"))
        limit = min(100, int(query.get("limit", "10")))
        status = query.get("status")
        items = [
            o
            for o in self.objects[parts.path].values()
            if o.get("created", 0) >= since and (status in (None, "all") or o.get("status") == status)
        ]
        items.sort(key=lambda o: (-o["created"], o["id"]))
        after = query.get("starting_after")
        if after is not None:
            ids = [o["id"] for o in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
            if parts.path == "/v1/checkout/sessions" and self.paused.is_set():
                self.reached.set()
                self.resume.wait(timeout=30)
        self.pages_served += 1
        page = items[:limit]
        return self.reply(
            handler, 200, {"object": "list", "url": parts.path, "has_more": len(items) > limit, "data": page}
        )

"""Local stand-ins for the list endpoints of Polar's and Lemon Squeezy's APIs (Stripe's are in
``stripe_api``, on the same plumbing) that the history
import reads, as each documents them, behind a Bearer key (401 otherwise).

- Polar: ``GET /v1/orders/`` and ``/v1/subscriptions/`` with ``page``, ``limit`` and
  ``sorting=-created_at``, answering ``{"items": [...], "pagination": {"total_count", "max_page"}}``.
- Lemon Squeezy (JSON:API): ``GET /v1/orders``, ``/v1/subscription-invoices`` and
  ``/v1/subscriptions`` with ``page[number]`` and ``page[size]``, answering ``{"meta": {"page":
  {...}}, "jsonapi": ..., "links": ..., "data": [resources]}``.

Their objects are the ``data`` of the webhook events the revenue stand-ins (``standins.Polar``,
``standins.LemonSqueezy``) make, the latest version of each, so both paths see the same money.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tests.integration.revenue.standins import Delivery


class ListAPI:
    """The HTTP plumbing: a Bearer key, lists of objects by path, pages served counted."""

    paths: tuple[str, ...] = ()
    headers: dict[str, str] = {}
    """More response headers the provider sends."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.objects: dict[str, dict[str, dict[str, Any]]] = {path: {} for path in self.paths}
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.serve(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def keep(self, path: str, obj: dict[str, Any]) -> None:
        """The object's latest version, created when it first was (a refund updates its order)."""
        known = self.objects[path].get(obj["id"])
        obj = json.loads(json.dumps(obj))
        if known is not None:
            self.set_created(obj, self.created(known))
        self.objects[path][obj["id"]] = obj

    def reply(self, handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in self.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def serve(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.reply(handler, 401, self.unauthorized())
        parts = urlsplit(handler.path)
        if parts.path not in self.objects:
            return self.reply(handler, 404, {"detail": "Not Found"})
        self.requests.append(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        items = sorted(self.objects[parts.path].values(), key=self.created, reverse=True)
        return self.reply(handler, 200, self.page(items, query))

    def unauthorized(self) -> dict[str, Any]:
        raise NotImplementedError

    def created(self, obj: dict[str, Any]) -> str:
        raise NotImplementedError

    def set_created(self, obj: dict[str, Any], created: str) -> None:
        raise NotImplementedError

    def page(self, items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        raise NotImplementedError


class PolarListAPI(ListAPI):
    paths = ("/v1/orders/", "/v1/subscriptions/")

    def add(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            event = json.loads(delivery.body)
            kind = event["type"].split(".")[0]
            if kind in ("order", "subscription"):
                self.keep(f"/v1/{kind}s/", event["data"])

    def unauthorized(self) -> dict[str, Any]:
        return {
            "error": "invalid_token",
            "detail": "The access token provided is expired, revoked or invalid.",
        }

    def created(self, obj: dict[str, Any]) -> str:
        return str(obj["created_at"])

    def set_created(self, obj: dict[str, Any], created: str) -> None:
        obj["created_at"] = created

    def page(self, items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        assert query.get("sorting") == "-created_at", query
        limit = min(100, int(query.get("limit", "10")))
        number = int(query.get("page", "1"))
        return {
            "items": items[(number - 1) * limit : number * limit],
            "pagination": {"total_count": len(items), "max_page": max(1, math.ceil(len(items) / limit))},
        }


LS_PATHS = {
    "order_": "/v1/orders",
    "subscription_payment_": "/v1/subscription-invoices",
    "subscription_": "/v1/subscriptions",
}


class LemonSqueezyListAPI(ListAPI):
    paths = tuple(LS_PATHS.values())

    def add(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            event = json.loads(delivery.body)
            name = event["meta"]["event_name"]
            path = next(p for prefix, p in LS_PATHS.items() if name.startswith(prefix))
            self.keep(path, event["data"])

    def unauthorized(self) -> dict[str, Any]:
        return {"jsonapi": {"version": "1.0"}, "errors": [{"detail": "Unauthenticated.", "status": "401"}]}

    def created(self, obj: dict[str, Any]) -> str:
        return str(obj["attributes"]["created_at"])

    def set_created(self, obj: dict[str, Any], created: str) -> None:
        obj["attributes"]["created_at"] = created

    def page(self, items: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        size = min(100, int(query.get("page[size]", "10")))
        number = int(query.get("page[number]", "1"))
        last = max(1, math.ceil(len(items) / size))
        shown = items[(number - 1) * size : number * size]
        return {
            "meta": {
                "page": {
                    "currentPage": number,
                    "from": (number - 1) * size + 1 if shown else None,
                    "lastPage": last,
                    "perPage": size,
                    "to": (number - 1) * size + len(shown) if shown else None,
                    "total": len(items),
                }
            },
            "jsonapi": {"version": "1.0"},
            "links": {"first": "…", "last": "…"},
            "data": shown,
        }

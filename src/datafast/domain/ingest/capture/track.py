"""POST /track as a bare ASGI handler: the hot path skips the framework's per-request layers.

Accepts one event, an array of events, or ``{"sent_at": ..., "events": [...]}``, as
``application/json`` or ``text/plain`` (what ``navigator.sendBeacon`` sends). CORS is open to
every origin. Errors are problem details; nothing here can answer a 500 for bad input. Bodies
are limited to ``MAX_BODY`` (64 KiB): over it the answer is a 413 problem, on a connection kept
open (the rest of the body is read and dropped) up to 16 MiB.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from litestar import asgi
from litestar.types import Receive, Scope, Send

from datafast.domain.ingest.capture import (
    Capture,
    Overloaded,
    PaymentRequired,
    Rejected,
    RequestInfo,
    SiteNotFound,
)
from datafast.domain.ingest.capture.schemas import MAX_BODY, FieldError, InvalidBody, decode_events
from datafast.lib.clientip import TrustedProxies, client_ip
from datafast.log import get_logger

__all__ = ("handle_track", "track")

log = get_logger(__name__)
_json = msgspec.json.Encoder()
_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-methods", b"POST, OPTIONS"),
    (b"access-control-allow-headers", b"content-type"),
    (b"access-control-max-age", b"86400"),
]
_ACCEPTED_TYPES = (b"application/json", b"text/plain", b"")


DRAIN_LIMIT = 16 * 1024 * 1024
"""An oversized body is read (and dropped) up to this size so the 413 reaches the client on an
open connection; past it the 413 closes the connection."""


class _Problem(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[FieldError] | None = None,
        *,
        close: bool = False,
        retry_after: int | None = None,
    ) -> None:
        self.status, self.title, self.detail, self.errors = status, title, detail, errors
        self.close = close
        self.retry_after = retry_after


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    media_type: bytes,
    close: bool = False,
    retry_after: int | None = None,
) -> None:
    headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode()), *_CORS]
    if close:
        headers.append((b"connection", b"close"))
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    """The body, or 413 when it is over ``MAX_BODY``. An oversized body is still read to its end
    (and dropped, up to ``DRAIN_LIMIT``) before the 413: answering while the client is still sending
    makes the server reset the connection, and the client sees a dropped connection, not the 413."""
    too_large = False
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            too_large = True
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Problem(400, "Bad request", "The client went away before sending the body.")
        chunk: bytes = message.get("body", b"")  # type: ignore[assignment]
        size += len(chunk)
        if size > MAX_BODY:
            too_large = True
            if size > DRAIN_LIMIT:  # not worth reading on: answer and close the connection
                raise _Problem(413, "Payload too large", f"The body is over {MAX_BODY} bytes.", close=True)
        if not too_large:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if too_large:
        raise _Problem(413, "Payload too large", f"The body is over {MAX_BODY} bytes.")
    return b"".join(chunks)


@asgi("/track", copy_scope=False, include_in_schema=False)
async def track(scope: Scope, receive: Receive, send: Send) -> None:
    """The route inside the app (what the test client and any mount reach)."""
    state = scope["app"].state
    await handle_track(state.ingest, state.trusted_proxies, scope, receive, send)


async def handle_track(
    capture: Capture, trusted: TrustedProxies, scope: Scope, receive: Receive, send: Send
) -> None:
    """The whole of POST /track; ``datafast serve`` calls it before the framework sees the request."""
    method = scope.get("method", "")
    if method == "OPTIONS":
        await _respond(send, 204, b"", b"text/plain")
        return
    try:
        if method != "POST":
            raise _Problem(405, "Method not allowed", "Send events with POST.")
        headers = dict(scope["headers"])
        media_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if media_type not in _ACCEPTED_TYPES:
            raise _Problem(415, "Unsupported media type", "Send JSON as application/json or text/plain.")
        body = await _read_body(scope, receive)
        try:
            events, sent_at, was_batch = decode_events(body)
        except InvalidBody as exc:
            raise _Problem(400, "Invalid event", "Some fields are missing or invalid.", exc.errors) from None
        client = scope.get("client")
        peer = client[0] if client else None
        forwarded = headers.get(b"x-forwarded-for")
        request = RequestInfo(
            ip=client_ip(peer, forwarded.decode("latin-1") if forwarded else None, trusted),
            user_agent=headers.get(b"user-agent", b"").decode("latin-1")[:512],
            received_at=time.time(),
        )
        try:
            accepted = await capture.accept(events, sent_at, request)
        except SiteNotFound as exc:
            raise _Problem(404, "Unknown site", f"No site has the id {exc.args[0]!r}.") from None
        except Rejected as exc:
            raise _Problem(400, "Invalid event", "Some fields are missing or invalid.", exc.errors) from None
        except PaymentRequired as exc:
            raise _Problem(
                402, "Payment required", f"Events for this site are not accepted: {exc}."
            ) from None
        except Overloaded as exc:
            raise _Problem(
                503,
                "Busy",
                f"Events are not being accepted for now ({exc}); retry shortly.",
                retry_after=exc.retry_after,
            ) from None
    except _Problem as problem:
        details: dict[str, object] = {
            "status": problem.status,
            "title": problem.title,
            "detail": problem.detail,
        }
        if problem.errors:
            details["errors"] = [{"key": e.key, "message": e.message} for e in problem.errors]
        await _respond(
            send,
            problem.status,
            _json.encode(details),
            b"application/problem+json",
            problem.close,
            problem.retry_after,
        )
        return
    payload: dict[str, Any] = (
        {"ids": accepted.ids} if was_batch else {"id": accepted.ids[0] if accepted.ids else None}
    )
    if accepted.dropped:
        payload["dropped"] = dict(accepted.dropped)
    await _respond(send, 202, _json.encode(payload), b"application/json")

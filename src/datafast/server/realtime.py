"""``GET /api/v1/sites/{website_id}/realtime``: the site's live events as Server-Sent Events.

Authenticated like every site route (session cookie — what ``EventSource`` sends — or an API
key; any member may follow). The stream starts with ``retry:`` and a ``: subscribed`` comment
once the subscription is live, then sends one ``event: event`` message per tracked event (pageview,
goal, purchase, custom), each with ``id:`` = the event's id, and a ``: ping`` comment every
``RealtimeHub.heartbeat`` seconds so proxies keep the connection open. A client that reconnects
with ``Last-Event-ID`` first gets the events it missed (from a per-site buffer of recent events).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.response import Stream

from datafast.db.models import Website
from datafast.domain.realtime import FeedMessage, RealtimeHub

__all__ = ("RETRY_MS", "realtime_stream")

RETRY_MS = 2000
UNAVAILABLE = '{"detail": "Live updates are unavailable; retrying."}'


def _message(message: FeedMessage) -> bytes:
    return b"id: " + message.id.encode() + b"\nevent: event\ndata: " + message.data + b"\n\n"


@get(
    "/api/v1/sites/{website_id:uuid}/realtime",
    tags=["realtime"],
    summary="Live events of a site (Server-Sent Events)",
    description="`text/event-stream`: `event: event` messages whose data is one event "
    "(`{id, type, name, pathname, country, city, source, device, visitor_id, timestamp, revenue, "
    "currency}`), "
    "`id:` per message (send `Last-Event-ID` to resume), `: ping` heartbeats.",
    media_type="text/event-stream",
)
async def realtime_stream(website: NamedDependency[Website], request: Request[Any, Any, Any]) -> Stream:
    hub: RealtimeHub = request.app.state.realtime
    last_event_id = request.headers.get("last-event-id") or request.query_params.get("last_event_id")

    async def events() -> AsyncIterator[bytes]:
        try:
            async with hub.listen(str(website.id), last_event_id) as listener:
                yield f"retry: {RETRY_MS}\n: subscribed\n\n".encode()
                for missed in listener.missed:
                    yield _message(missed)
                while True:
                    try:
                        message = await asyncio.wait_for(listener.queue.get(), timeout=hub.heartbeat)
                    except TimeoutError:
                        yield b": ping\n\n"
                        continue
                    yield _message(message)
        except ConnectionError:
            yield f"retry: {RETRY_MS}\nevent: error\ndata: {UNAVAILABLE}\n\n".encode()

    return Stream(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )

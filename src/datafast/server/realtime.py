"""``GET /api/v1/sites/{website_id}/realtime``: the site's live events as Server-Sent Events.

Authenticated like every site route (session cookie — what ``EventSource`` sends — or an API
key; any member may follow). The stream starts with ``retry:`` and a ``: subscribed`` comment
once the subscription is live, then sends one ``event: event`` message per tracked event (pageview,
goal, purchase, custom), each with ``id:`` = the event's id, and a ``: ping`` comment every
``RealtimeHub.heartbeat`` seconds so proxies keep the connection open. A client that reconnects
with ``Last-Event-ID`` first gets the events it missed (from a per-site buffer of recent events).

Access is not decided once: every ``REALTIME_RECHECK`` seconds the stream resolves its credential
again from the database (session, API key or share link) and checks the site grant, and ends as
soon as it no longer holds — after logout, a password change that revoked sessions, an API key or
share link revoked, removal from the site's team, or the site's deletion. The browser's
``EventSource`` then reconnects and is answered 401/404, so it stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.response import Stream

from datafast.db.models import Website
from datafast.domain.accounts.access import site_grant
from datafast.domain.realtime import FeedMessage, RealtimeHub
from datafast.errors import Forbidden, NotFound, Unauthorized
from datafast.log import get_logger
from datafast.server.auth import principal_for_credentials, session_cookie_name
from datafast.settings import Settings

__all__ = ("RETRY_MS", "realtime_stream")

RETRY_MS = 2000
log = get_logger(__name__)
UNAVAILABLE = '{"detail": "Live updates are unavailable; retrying."}'


async def _still_allowed(request: Request[Any, Any, Any], website_id: Any, allow_share: bool) -> bool:
    """Whether the request's credential still grants reading the site (a fresh database session:
    the request's own one is closed once the response has started)."""
    settings: Settings = request.app.state.settings
    db_config: SQLAlchemyAsyncConfig = request.app.state.db_config
    authorization = request.headers.get("authorization")
    token = None if authorization else request.cookies.get(session_cookie_name(settings))
    try:
        async with db_config.get_session() as db:
            principal = await principal_for_credentials(db, settings, authorization, token)
            if principal is None:
                return False
            await site_grant(db, principal, website_id, write=False, allow_share=allow_share)
    except (Unauthorized, Forbidden, NotFound):
        return False
    except Exception as exc:  # the database hiccuped: keep streaming, check again next time
        log.warning("realtime access re-check failed", error=repr(exc))
    return True


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
    settings: Settings = request.app.state.settings
    last_event_id = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    allow_share = bool(request.route_handler.opt.get("share", False))
    website_id = website.id

    async def events() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            async with hub.listen(str(website_id), last_event_id) as listener:
                yield f"retry: {RETRY_MS}\n: subscribed\n\n".encode()
                for missed in listener.missed:
                    yield _message(missed)
                next_ping = loop.time() + hub.heartbeat
                next_check = loop.time() + settings.realtime_recheck
                while True:
                    now = loop.time()
                    if now >= next_check:
                        if not await _still_allowed(request, website_id, allow_share):
                            log.info("realtime stream ended: access revoked", website_id=str(website_id))
                            return
                        next_check = loop.time() + settings.realtime_recheck
                    if now >= next_ping:
                        yield b": ping\n\n"
                        next_ping = loop.time() + hub.heartbeat
                    wait = max(0.0, min(next_ping, next_check) - loop.time())
                    try:
                        message = await asyncio.wait_for(listener.queue.get(), timeout=wait)
                    except TimeoutError:
                        continue
                    yield _message(message)
                    next_ping = loop.time() + hub.heartbeat
        except ConnectionError:
            yield f"retry: {RETRY_MS}\nevent: error\ndata: {UNAVAILABLE}\n\n".encode()

    return Stream(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )

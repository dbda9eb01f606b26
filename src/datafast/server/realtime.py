"""``GET /api/v1/sites/{website_id}/realtime``: the site's live events as Server-Sent Events.

Authenticated like every site route (session cookie — what ``EventSource`` sends — or an API
key; any member may follow), and by a share link's access token (``Authorization: Bearer dfs_…``:
the shared dashboard reads the stream with ``fetch``, which can send it). The stream starts with
``retry:`` and a ``: subscribed`` comment once the subscription is live, then sends one
``event: event`` message per tracked event (pageview, goal, purchase, custom), each with
``id:`` = the event's id, and a ``: ping`` comment every
``RealtimeHub.heartbeat`` seconds so proxies keep the connection open. A client that reconnects
with ``Last-Event-ID`` first gets the events it missed (from a per-site buffer of recent events).

Access is not decided once: every ``REALTIME_RECHECK`` seconds the stream resolves its credential
again from the database (session, API key or share link) and checks the site grant, and ends as
soon as it no longer holds — after logout, a password change that revoked sessions, an API key or
share link revoked, removal from the site's team, or the site's deletion. The browser's
``EventSource`` then reconnects and is answered 401/404, so it stops.

What a stream says of an event (:class:`_Presenter`):

- A payment carries the country where the stream last saw its visitor (the site's recent events
  and those since it opened), so the dashboard's globe can place it; ``""`` when unknown.
- A share link's viewer sees aggregates only: no ``visitor_id`` (nor ``city``, nor ``identify``
  events at all), an ``id`` that is
  an opaque name of the event (a payment's id would be its provider's transaction id), and
  ``new_visitor`` — whether the stream had not seen the event's visitor before, which is all the
  live panel needs to keep its visitor count current.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from typing import Any

import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.response import Stream

from datafast.db.models import Website
from datafast.domain.accounts.access import Principal, site_grant
from datafast.domain.accounts.tokens import sign
from datafast.domain.realtime import FeedMessage, RealtimeHub
from datafast.errors import Forbidden, NotFound, Unauthorized
from datafast.log import get_logger
from datafast.server.auth import principal_for_credentials, session_cookie_name
from datafast.settings import Settings

__all__ = ("RETRY_MS", "SHARED_FIELDS", "realtime_stream")

RETRY_MS = 2000
log = get_logger(__name__)
UNAVAILABLE = '{"detail": "Live updates are unavailable; retrying."}'
SHARED_FIELDS = (
    "type",
    "name",
    "pathname",
    "country",
    "source",
    "device",
    "timestamp",
    "revenue",
    "currency",
)
"""What a share link's viewer gets of an event (plus ``id`` and ``new_visitor``)."""
PAYMENTS = frozenset({"purchase", "refund"})
REMEMBERED_VISITORS = 5000
"""Visitors a stream remembers (where seen, whether seen): the oldest are forgotten first."""


class _Presenter:
    """What one stream sends of each event: see the module docstring."""

    def __init__(self, shared_with: str | None) -> None:
        self._key = shared_with
        """The secret that names events for a share viewer; None for members."""
        self._places: OrderedDict[str, str] = OrderedDict()

    def event_id(self, event_id: str) -> str:
        if self._key is None:
            return event_id
        return sign(self._key, "live-event", event_id)[:24]

    def learn(self, messages: Iterable[FeedMessage]) -> None:
        for message in messages:
            self._seen(_decode(message))

    def _seen(self, event: dict[str, Any] | None) -> tuple[str, bool]:
        """(the visitor's country as far as known, whether the visitor is new to this stream).

        A payment makes nobody new: it is no visit (the live count is of visitors seen browsing).
        """
        if event is None:
            return "", False
        visitor = str(event.get("visitor_id") or "")
        country = str(event.get("country") or "") or self._places.get(visitor, "")
        if not visitor or event.get("type") in PAYMENTS:
            return country, False
        new = visitor not in self._places
        self._places[visitor] = country
        self._places.move_to_end(visitor)
        if len(self._places) > REMEMBERED_VISITORS:
            self._places.popitem(last=False)
        return country, new

    def render(self, message: FeedMessage) -> bytes:
        event = _decode(message)
        country, new = self._seen(event)
        if event is None:  # not an object: nothing to say of it
            return b""
        if self._key is not None:
            if event.get("type") == "identify":  # about a person, not the traffic
                return b""
            shared = {name: event[name] for name in SHARED_FIELDS if name in event}
            shared.update(id=self.event_id(message.id), new_visitor=new)
            if event.get("type") in PAYMENTS:
                shared["country"] = country
            data = msgspec.json.encode(shared)
        elif event.get("type") in PAYMENTS and country and not event.get("country"):
            data = msgspec.json.encode({**event, "country": country})
        else:
            data = message.data
        return b"id: " + self.event_id(message.id).encode() + b"\nevent: event\ndata: " + data + b"\n\n"


def _decode(message: FeedMessage) -> dict[str, Any] | None:
    try:
        event = msgspec.json.decode(message.data)
    except msgspec.DecodeError:
        return None
    return event if isinstance(event, dict) else None


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


@get(
    "/api/v1/sites/{website_id:uuid}/realtime",
    tags=["realtime"],
    summary="Live events of a site (Server-Sent Events)",
    description="`text/event-stream`: `event: event` messages whose data is one event "
    "(`{id, type, name, pathname, country, city, source, device, visitor_id, timestamp, revenue, "
    "currency}`; to a share link's token: `{id, type, name, pathname, country, source, device, "
    "timestamp, revenue, currency, new_visitor}`), "
    "`id:` per message (send `Last-Event-ID` to resume), `: ping` heartbeats.",
    media_type="text/event-stream",
    opt={"share": True},
)
async def realtime_stream(
    website: NamedDependency[Website],
    principal: NamedDependency[Principal],
    request: Request[Any, Any, Any],
) -> Stream:
    hub: RealtimeHub = request.app.state.realtime
    settings: Settings = request.app.state.settings
    last_event_id = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    allow_share = bool(request.route_handler.opt.get("share", False))
    website_id = website.id
    presenter = _Presenter(settings.secret_key if principal.kind == "share" else None)

    async def events() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            async with hub.listen(str(website_id), last_event_id, presenter.event_id) as listener:
                presenter.learn(listener.recent[: len(listener.recent) - len(listener.missed)])
                yield f"retry: {RETRY_MS}\n: subscribed\n\n".encode()
                for missed in listener.missed:
                    yield presenter.render(missed)
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
                    yield presenter.render(message)
                    next_ping = loop.time() + hub.heartbeat
        except ConnectionError:
            yield f"retry: {RETRY_MS}\nevent: error\ndata: {UNAVAILABLE}\n\n".encode()

    return Stream(
        events(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )

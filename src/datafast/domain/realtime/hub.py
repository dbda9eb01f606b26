"""One pub/sub subscription per site, shared by every dashboard following that site in this process.

Ingest publishes one JSON array of events per request on ``site:<website_id>`` (in-process in
embedded mode, Valkey in scaled mode, so an event accepted by any web process reaches every
process). The hub splits the arrays into single events, keeps the last ``buffer_size`` of each
site so that a reconnecting client (``Last-Event-ID``) gets what it missed, and stays subscribed
for ``linger`` seconds after the last client leaves so that a reconnect misses nothing.

A subscription that drops once it was live (Valkey restarted, the connection killed) is made
again with a growing delay (up to ``MAX_RESUBSCRIBE_DELAY``), keeping the listeners: their streams
stay open and carry on with what is published after the resubscription. Only a first subscription
that never came up fails the listeners (their streams end and the browsers retry).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import msgspec

from datafast.lib.pubsub import PubSub
from datafast.log import get_logger

__all__ = ("FeedMessage", "Listener", "RealtimeHub")

log = get_logger(__name__)

FIRST_RESUBSCRIBE_DELAY = 0.1
MAX_RESUBSCRIBE_DELAY = 5.0


@dataclass(frozen=True, slots=True)
class FeedMessage:
    id: str
    """The event's id: unique across processes, so it can be a ``Last-Event-ID``."""
    data: bytes
    """The event as JSON (``RealtimeEvent`` of ingest processing)."""


@dataclass(eq=False)
class Listener:
    queue: asyncio.Queue[FeedMessage]
    missed: list[FeedMessage]
    """Buffered events after the client's ``Last-Event-ID``, to send first."""
    recent: list[FeedMessage] = field(default_factory=list)
    """The site's buffered events when the listener joined (``missed`` is their tail): what the
    stream may learn from, e.g. where a visitor who pays now was seen."""


@dataclass(eq=False)
class _SiteFeed:
    buffer: deque[FeedMessage]
    listeners: set[Listener] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    idle_since: float | None = None
    failed: BaseException | None = None


class RealtimeHub:
    def __init__(
        self,
        pubsub: PubSub,
        *,
        buffer_size: int = 200,
        linger: float = 60.0,
        queue_size: int = 500,
        heartbeat: float = 15.0,
    ) -> None:
        self._pubsub = pubsub
        self.heartbeat = heartbeat
        """Seconds between keep-alive comments on an idle stream."""
        self._buffer_size = buffer_size
        self._linger = linger
        self._queue_size = queue_size
        self._feeds: dict[str, _SiteFeed] = {}
        self._reaper: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def listen(
        self,
        website_id: str,
        last_event_id: str | None = None,
        event_key: Callable[[str], str] | None = None,
    ) -> AsyncIterator[Listener]:
        """Follow a site; returns once subscribed, so nothing published afterwards is missed.

        ``event_key``: how the stream names events to its client (``Last-Event-ID`` is compared
        with it), when not by their ids.
        """
        feed = self._feeds.get(website_id)
        if feed is None or feed.failed is not None or (feed.task is not None and feed.task.done()):
            feed = _SiteFeed(deque(maxlen=self._buffer_size))
            self._feeds[website_id] = feed
            feed.task = asyncio.create_task(self._follow(website_id, feed), name=f"realtime:{website_id}")
        listener = Listener(asyncio.Queue(self._queue_size), [])
        feed.listeners.add(listener)
        feed.idle_since = None
        self._start_reaper()
        try:
            try:
                await asyncio.wait_for(feed.ready.wait(), timeout=10)
            except TimeoutError:
                raise ConnectionError("realtime subscription not ready after 10 s") from None
            if feed.failed is not None:
                raise ConnectionError(f"realtime subscription failed: {feed.failed!r}")
            listener.recent = list(feed.buffer)
            if last_event_id:
                name = event_key or str
                ids = [name(message.id) for message in listener.recent]
                if last_event_id in ids:
                    listener.missed = listener.recent[ids.index(last_event_id) + 1 :]
            yield listener
        finally:
            feed.listeners.discard(listener)
            if not feed.listeners:
                feed.idle_since = asyncio.get_running_loop().time()

    async def _follow(self, website_id: str, feed: _SiteFeed) -> None:
        live_once = False
        delay = FIRST_RESUBSCRIBE_DELAY
        while True:
            try:
                async with self._pubsub.subscribe(f"site:{website_id}") as messages:
                    live_once = True
                    delay = FIRST_RESUBSCRIBE_DELAY
                    feed.ready.set()
                    async for raw in messages:
                        self._fan_out(feed, raw)
                raise ConnectionError("the subscription's message stream ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not live_once:
                    log.warning("realtime subscription failed", website_id=website_id, error=repr(exc))
                    feed.failed = exc
                    feed.ready.set()
                    return
                # New listeners wait for the resubscription instead of being told they are live.
                feed.ready.clear()
                log.warning(
                    "realtime subscription lost; subscribing again",
                    website_id=website_id,
                    error=repr(exc),
                    retry_in=delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RESUBSCRIBE_DELAY)

    @staticmethod
    def _fan_out(feed: _SiteFeed, raw: bytes) -> None:
        try:
            events = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return
        for event in events if isinstance(events, list) else [events]:
            if not isinstance(event, dict):
                continue
            message = FeedMessage(str(event.get("id", "")), msgspec.json.encode(event))
            feed.buffer.append(message)
            for listener in feed.listeners:
                if listener.queue.full():  # a stalled client loses its oldest events, never blocks ingest
                    listener.queue.get_nowait()
                listener.queue.put_nowait(message)

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap(), name="realtime:reaper")

    async def _reap(self) -> None:
        """Unsubscribe from sites nobody has followed for ``linger`` seconds."""
        loop = asyncio.get_running_loop()
        while self._feeds:
            await asyncio.sleep(min(self._linger, 5.0))
            now = loop.time()
            for website_id, feed in list(self._feeds.items()):
                if feed.idle_since is not None and now - feed.idle_since >= self._linger:
                    del self._feeds[website_id]
                    if feed.task is not None:
                        feed.task.cancel()

    async def close(self) -> None:
        tasks = [feed.task for feed in self._feeds.values() if feed.task is not None]
        if self._reaper is not None:
            tasks.append(self._reaper)
        self._feeds.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

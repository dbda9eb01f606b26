"""Tell every web process that a site changed, so /track's site cache drops it at once.

Each process caches sites for a minute (:class:`~datafast.domain.ingest.capture.sites.SiteDirectory`).
A change (new hostnames, deletion) is published on the pub/sub channel ``sites:changed``
(in-process in embedded mode, Valkey in scaled mode); each process follows the channel and
forgets the site. If a message is lost (Valkey briefly down), the one-minute expiry still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Protocol

from datafast.lib.pubsub import PubSub
from datafast.log import get_logger

__all__ = ("CHANNEL", "announce_site_change", "follow_site_changes")

CHANNEL = "sites:changed"
log = get_logger(__name__)


class _Forgets(Protocol):
    def forget(self, website_id: str) -> None: ...


async def announce_site_change(pubsub: PubSub, website_id: uuid.UUID) -> None:
    try:
        await pubsub.publish(CHANNEL, str(website_id).encode())
    except Exception as exc:  # the change is committed; the cache expiry catches up
        log.warning("could not announce a site change", website_id=str(website_id), error=str(exc))


@contextlib.asynccontextmanager
async def follow_site_changes(pubsub: PubSub, directory: _Forgets) -> AsyncIterator[None]:
    """While inside, a background task makes ``directory`` forget every announced site."""
    # Start-up waits for the first subscription attempt (so no change made right after
    # start is missed) but not for retries: Valkey being down must not hold the app back.
    first_attempt = asyncio.Event()

    async def follow() -> None:
        while True:
            try:
                async with pubsub.subscribe(CHANNEL) as messages:
                    first_attempt.set()
                    async for message in messages:
                        directory.forget(message.decode(errors="replace"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                first_attempt.set()
                log.warning("site change feed interrupted; retrying", error=str(exc))
                await asyncio.sleep(1)

    task = asyncio.create_task(follow(), name="site-changes")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(first_attempt.wait(), 10)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

"""The realtime hub over Valkey pub/sub subscribes again when its connection is killed, and its
listeners (open SSE streams) keep receiving without reconnecting."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest
from valkey.asyncio import Valkey

from datafast.domain.realtime import RealtimeHub
from datafast.lib.pubsub import ValkeyPubSub
from tests.conftest import REDIS_DB

pytestmark = pytest.mark.scaled


async def _pubsub_clients(admin: Valkey) -> set[str]:
    return {c["id"] for c in await admin.client_list(_type="pubsub") if c.get("db") == str(REDIS_DB)}


async def test_a_listener_keeps_its_feed_after_the_pubsub_connection_is_killed(valkey_url: str) -> None:
    client = Valkey.from_url(valkey_url)
    admin = Valkey.from_url(valkey_url, decode_responses=True)
    hub = RealtimeHub(ValkeyPubSub(client))
    site = str(uuid.uuid4())
    channel = f"datafast:pubsub:site:{site}"

    async def publish(event_id: str) -> None:
        await client.publish(channel, msgspec.json.encode([{"id": event_id}]))

    try:
        async with hub.listen(site) as listener:
            await publish("before")
            assert (await asyncio.wait_for(listener.queue.get(), 5)).id == "before"

            killed = await _pubsub_clients(admin)
            assert killed
            for client_id in killed:
                await admin.execute_command("CLIENT KILL ID", client_id)

            for _ in range(500):  # up to 10 s
                if (await admin.pubsub_numsub(channel))[0][1] == 1:
                    break
                await asyncio.sleep(0.02)
            else:
                pytest.fail("the hub did not subscribe again within 10 s")
            assert not (await _pubsub_clients(admin)) & killed
            await publish("after")
            assert (await asyncio.wait_for(listener.queue.get(), 5)).id == "after"
            assert listener.queue.empty()
    finally:
        await hub.close()
        await client.aclose()
        await admin.aclose()


async def test_a_first_subscription_that_never_comes_up_fails_its_listeners() -> None:
    # Nothing listens on this port: the first subscription fails and the stream is told so.
    hub = RealtimeHub(ValkeyPubSub(Valkey.from_url("redis://127.0.0.1:1/0")))
    try:
        with pytest.raises(ConnectionError):
            async with hub.listen(str(uuid.uuid4())):
                pass
    finally:
        await hub.close()

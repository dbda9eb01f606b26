"""Each adapter behaves the same in its embedded and its scaled (Valkey) implementation."""

from __future__ import annotations

import asyncio
import os

import pytest

from datafast.errors import ServiceUnavailable
from datafast.lib.adapters import Adapters


async def test_cache_round_trip_and_expiry(adapters: Adapters) -> None:
    cache = adapters.cache
    await cache.set("k1", b"v1", ttl=60)
    await cache.set("short", b"gone soon", ttl=0.05)

    assert await cache.get("k1") == b"v1"
    assert await cache.get("missing") is None
    await asyncio.sleep(0.15)  # waits out the 50 ms TTL itself, not a race
    assert await cache.get("short") is None
    await cache.delete("k1")
    assert await cache.get("k1") is None


async def test_rate_limiter_allows_the_limit_then_refuses(adapters: Adapters) -> None:
    limiter = adapters.rate_limiter
    results = [await limiter.hit("login:a@example.com", limit=5, window=900) for _ in range(6)]

    assert [r.allowed for r in results] == [True] * 5 + [False]
    assert [r.remaining for r in results] == [4, 3, 2, 1, 0, 0]
    assert 890 <= results[-1].retry_after <= 900
    other = await limiter.hit("login:b@example.com", limit=5, window=900)
    assert other.allowed
    await limiter.reset("login:a@example.com")
    assert (await limiter.hit("login:a@example.com", limit=5, window=900)).allowed


async def test_rate_limit_window_resets(adapters: Adapters) -> None:
    limiter = adapters.rate_limiter
    assert (await limiter.hit("w", limit=1, window=1)).allowed
    assert not (await limiter.hit("w", limit=1, window=1)).allowed
    await asyncio.sleep(1.1)  # the window is one second long
    assert (await limiter.hit("w", limit=1, window=1)).allowed


async def test_pubsub_delivers_to_every_subscriber_of_the_channel(adapters: Adapters) -> None:
    pubsub = adapters.pubsub
    async with (
        pubsub.subscribe("site:1") as first,
        pubsub.subscribe("site:1") as second,
        pubsub.subscribe("site:2") as other,
    ):
        # subscribe() returns once the subscription is live: a publish right after is delivered.
        await pubsub.publish("site:1", b"hello")
        await pubsub.publish("site:2", b"for two")

        assert await asyncio.wait_for(anext(first), 2) == b"hello"
        assert await asyncio.wait_for(anext(second), 2) == b"hello"
        assert await asyncio.wait_for(anext(other), 2) == b"for two"


# Scaled jobs run in a `datafast worker` process: test_cli.py covers them.
@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_in_process_queue_runs_a_job(adapters: Adapters) -> None:
    result = await adapters.queue.apply("ping", timeout=5)

    assert result == {"pong": True, "pid": os.getpid()}


async def test_identical_reads_at_once_run_once_and_later_ones_run_again(adapters: Adapters) -> None:
    store = adapters.event_store
    sql = "SELECT generateUUIDv4() AS id, {n:UInt8} AS n"  # a new id each time the statement runs
    same = await asyncio.gather(*(store.query_shared(sql, {"n": 1}) for _ in range(5)))
    other = await store.query_shared(sql, {"n": 2})
    later = await store.query_shared(sql, {"n": 1})

    ids = {result.result_rows[0][0] for result in same}
    assert len(ids) == 1  # one run answered all five
    assert other.result_rows[0][1] == 2
    assert other.result_rows[0][0] not in ids  # other values: a run of their own
    assert later.result_rows[0][0] not in ids  # nothing kept once done


async def test_a_shared_read_that_fails_fails_for_every_caller(adapters: Adapters) -> None:
    store = adapters.event_store
    results = await asyncio.gather(
        *(store.query_shared("SELECT throwIf(1, 'no such luck')") for _ in range(3)), return_exceptions=True
    )

    assert all(isinstance(r, Exception) and "no such luck" in str(r) for r in results)
    assert (await store.query_shared("SELECT 1")).result_rows == [(1,)]


async def test_the_event_store_connects_every_pool_thread_when_opened(adapters: Adapters) -> None:
    store = adapters.event_store
    await store.open()
    connected = len(store._clients)
    await asyncio.gather(*(store.query("SELECT sleepEachRow(0.01)") for _ in range(3 * store._threads)))

    assert connected == store._threads + store._ingest_threads  # one client a thread, all made at once
    assert len(store._clients) == connected  # reads at once made no more


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_ingest_does_not_queue_behind_the_dashboards_reads(adapters: Adapters) -> None:
    """Embedded, one process ingests and answers the dashboard: a batch's insert (and what ingest
    asks around it) runs on its own thread while every read thread is busy and more reads wait."""
    store = adapters.event_store
    await store.open()
    reads = [
        asyncio.ensure_future(store.query("SELECT sleepEachRow(0.1) FROM numbers(3)"))
        for _ in range(3 * store._threads)  # three rounds of 0.3 s on every read thread
    ]
    await asyncio.sleep(0)  # every read submitted first
    with store.ingesting():
        answer = await store.query("SELECT 42")
    still_waiting = sum(not read.done() for read in reads)
    await asyncio.gather(*reads)

    assert answer.result_rows == [(42,)]
    assert still_waiting >= 2 * store._threads  # it went before the rounds still queued


async def test_a_closed_event_store_answers_that_datafast_is_stopping(adapters: Adapters) -> None:
    """A request that comes in while the process stops gets a 503 problem, not an error of ours."""
    store = adapters.event_store
    await store.close()  # what the app's shutdown does

    with pytest.raises(ServiceUnavailable, match="stopping") as raised:
        await store.query("SELECT 1")
    assert raised.value.status_code == 503

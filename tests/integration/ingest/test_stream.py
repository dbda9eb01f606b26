"""Scaled mode's log: web processes append to partitioned Valkey streams; SAQ drain jobs in the
workers store each event exactly once, and a holder that dies is resumed by the next."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import msgspec
import pytest
from saq import Queue
from saq.job import Status
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from valkey.asyncio import Valkey
from valkey.exceptions import ResponseError

from datafast.db.config import sqlalchemy_config
from datafast.domain.accounts.services import UserService
from datafast.domain.ingest.capture import Captured, CapturedEvent
from datafast.domain.ingest.capture.schemas import TrackEvent
from datafast.domain.ingest.jobs import DRAIN
from datafast.domain.ingest.log.stream import (
    GROUP,
    StreamDrainer,
    StreamSpool,
    backlog,
    partition_of,
    stream_name,
)
from datafast.domain.ingest.log.writer import insert_rows
from datafast.domain.ingest.pipeline import create_stream_processing
from datafast.domain.ingest.process import Processed
from datafast.domain.revenue.service import email_hash
from datafast.domain.sites.services import WebsiteService
from datafast.lib.adapters import Adapters
from datafast.lib.queue import SaqQueue
from tests.helpers import CHROME_MAC, captured_record, running_worker
from tests.integration.ingest.conftest import Pipeline

pytestmark = pytest.mark.scaled
scaled = pytest.mark.parametrize("mode", ["scaled"], indirect=True)
PARTITIONS = 4


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "INGEST_PARTITIONS": str(PARTITIONS), "INGEST_HEARTBEAT": "1"}


def worker_queue(adapters: Adapters) -> Queue:
    assert isinstance(adapters.queue, SaqQueue)
    return adapters.queue.saq


def _record(site: str, n: int) -> tuple[str, bytes]:
    return site, captured_record(site, n, at=round(time.time(), 3))


@pytest.fixture
async def engine(pipeline: Pipeline) -> AsyncIterator[AsyncEngine]:
    engine = sqlalchemy_config(pipeline.adapters.settings).get_engine()
    yield engine
    await engine.dispose()


async def _stored(adapters: Adapters, site: str) -> list[int]:
    """How many times each stored event id of the site is there."""
    result = await adapters.event_store.query(
        "SELECT count() FROM events WHERE website_id = {s:UUID} GROUP BY event_id", parameters={"s": site}
    )
    return [int(row[0]) for row in result.result_rows]


async def _left(client: Valkey, partition: int) -> tuple[int, int, int]:
    """(stream entries, pending deliveries, announced batches) of a partition still in Valkey."""
    stream = stream_name(partition)
    try:
        pending = int((await client.xpending(stream, GROUP))["pending"])
    except ResponseError:  # no worker has created the group yet
        pending = 0
    return await client.xlen(stream), pending, await client.hlen(stream + ":batches")


async def _read_and_announce(drainer: StreamDrainer, token: str) -> Processed:
    """A holder's steps up to its insert: read, process, announce (with the sessions saved)."""
    entries = await drainer.read()
    ids = [entry_id for entry_id, _ in entries]
    return await drainer.processor.run([b for _, b in entries], lambda p: drainer._persist(token, ids, p))


async def _until_empty(count: Callable[[], Awaitable[int]]) -> None:
    """Wait (at most 30 s) until ``count()`` is 0: the worker drained what it counts."""
    for _ in range(3000):
        if not await count():
            return
        await asyncio.sleep(0.01)


async def _sites_on_two_partitions(db_session: AsyncSession, first: str) -> list[str]:
    """``first`` and more sites of the same owner until two partitions have sites."""
    owner = await UserService(session=db_session).create_user(
        f"p{uuid.uuid4().hex[:6]}@example.com", "password1"
    )
    sites = [first]
    while len({partition_of(s, PARTITIONS) for s in sites}) < 2 or len(sites) < 3:
        site = await WebsiteService(session=db_session).create_site(owner, f"{uuid.uuid4().hex[:6]}.example")
        site.hostnames = ["sessions.example"]
        sites.append(str(site.id))
    await db_session.commit()
    return sites


@scaled
async def test_sites_spread_over_partitions_and_saq_drain_jobs_store_each_event_once(
    pipeline: Pipeline, db_session: AsyncSession
) -> None:
    adapters = pipeline.adapters
    assert adapters.valkey is not None
    sites = await _sites_on_two_partitions(db_session, pipeline.site_id)
    web = StreamSpool(adapters.valkey, PARTITIONS)
    # One request with two sites' events: one entry per site, each in its site's partition.
    await web.append([_record(sites[0], 0), _record(sites[1], 0)])
    await asyncio.gather(*(web.append([_record(site, 0)]) for site in sites[2:]))
    await asyncio.gather(*(web.append([_record(site, n)]) for site in sites for n in range(1, 60)))
    used = {partition_of(site, PARTITIONS) for site in sites}
    for partition in range(PARTITIONS):
        expected = sum(60 for site in sites if partition_of(site, PARTITIONS) == partition)
        assert await adapters.valkey.xlen(stream_name(partition)) == expected
    assert await web.depth() == 60 * len(sites)

    valkey = adapters.valkey
    async with running_worker(adapters, interval=0.05) as worker:
        await _until_empty(lambda: backlog(valkey, PARTITIONS))
        jobs = {p: await worker.queue.job(f"{DRAIN}:{p}") for p in used}

    for site in sites:
        assert sorted(await _stored(adapters, site)) == [1] * 60, site
    for partition in range(PARTITIONS):
        assert await _left(adapters.valkey, partition) == (0, 0, 0)
    # Each partition was drained by its SAQ job, run by this worker.
    for partition, job in jobs.items():
        assert job is not None, partition
        assert job.kwargs == {"partition": partition}
        assert job.worker_id == worker.id


@scaled
async def test_requests_appending_at_once_share_a_round_trip_and_fail_alone(
    pipeline: Pipeline, db_session: AsyncSession
) -> None:
    adapters = pipeline.adapters
    assert adapters.valkey is not None
    sites = await _sites_on_two_partitions(db_session, pipeline.site_id)
    broken = partition_of(sites[0], PARTITIONS)
    other = next(site for site in sites if partition_of(site, PARTITIONS) != broken)
    await adapters.valkey.set(stream_name(broken), b"not a stream")  # every append to it fails
    web = StreamSpool(adapters.valkey, PARTITIONS)

    results = await asyncio.gather(
        *(web.append([_record(site, n)]) for n in range(50) for site in (sites[0], other)),
        return_exceptions=True,
    )

    # Each request has its own entry's answer: the broken partition's fail, the other's are stored.
    assert all(isinstance(r, ResponseError) and "WRONGTYPE" in str(r) for r in results[0::2]), results[:4]
    assert results[1::2] == [None] * 50
    assert await adapters.valkey.xlen(stream_name(partition_of(other, PARTITIONS))) == 50
    assert 1 <= web.round_trips < 10  # not one round trip per request
    await web.append([_record(other, 50)])  # and a later request starts a flush of its own
    assert await adapters.valkey.xlen(stream_name(partition_of(other, PARTITIONS))) == 51


@scaled
async def test_a_batch_closes_at_its_size_as_well_as_its_count(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    adapters, site = pipeline.adapters, pipeline.site_id
    assert adapters.valkey is not None
    records = [_record(site, n) for n in range(600)]
    await StreamSpool(adapters.valkey, PARTITIONS).append(records)
    cap = sum(len(record) for _, record in records[:300])
    drainer = create_stream_processing(adapters, engine, max_rows=10_000, max_bytes=cap).drainer(
        partition_of(site, PARTITIONS)
    )
    await drainer.ensure_group()

    first, rest = await drainer.read(), await drainer.read()

    # Read READ_CHUNK entries at a time, it stops at the first read that reaches the size.
    assert 300 <= len(first) < 600
    assert sum(len(record) for _, record in first) >= cap
    assert [record for _, record in first + rest] == [record for _, record in records]


@scaled
async def test_a_holder_dying_after_its_insert_is_resumed_without_duplicates(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    adapters, site = pipeline.adapters, pipeline.site_id
    assert adapters.valkey is not None
    partition = partition_of(site, PARTITIONS)
    await StreamSpool(adapters.valkey, PARTITIONS).append([_record(site, n) for n in range(10)])
    await StreamSpool(adapters.valkey, PARTITIONS).append([_record(site, 10)])
    dying = create_stream_processing(adapters, engine).drainer(partition)
    await dying.ensure_group()
    # Its steps up to the crash: read, process, announce, insert — and never acknowledge.
    processed = await _read_and_announce(dying, "stream:dying")
    assert await insert_rows(adapters.event_store, processed.blob, "stream:dying") == 11
    sessions_before = await adapters.valkey.keys("datafast:session:*")

    successor = create_stream_processing(adapters, engine).drainer(partition)
    assert await successor.resume() == 11  # the announced batch's rows, again under its token
    assert sorted(await _stored(adapters, site)) == [1] * 11
    assert await _left(adapters.valkey, partition) == (0, 0, 0)
    # Not processed twice: the successor applied nothing more to the visits.
    assert sorted(await adapters.valkey.keys("datafast:session:*")) == sorted(sessions_before)
    totals = await pipeline.session_totals()
    assert (totals["visits"], totals["events"]) == (11, 11)
    assert await successor.resume() == 0  # nothing left


@scaled
async def test_a_holder_dying_before_announcing_leaves_its_entries_to_the_next(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    adapters, site = pipeline.adapters, pipeline.site_id
    assert adapters.valkey is not None
    partition = partition_of(site, PARTITIONS)
    await StreamSpool(adapters.valkey, PARTITIONS).append([_record(site, n) for n in range(5)])
    dying = create_stream_processing(adapters, engine).drainer(partition)
    await dying.ensure_group()
    assert len(await dying.read()) == 5  # delivered to it, pending, then it dies
    await StreamSpool(adapters.valkey, PARTITIONS).append([_record(site, n) for n in range(5, 8)])

    successor = create_stream_processing(adapters, engine, interval=0.05).drainer(partition)
    # Holding the partition: first the 5 left pending, then the 3 never read.
    assert await successor.hold(0.2) == 8
    assert sorted(await _stored(adapters, site)) == [1] * 8
    assert await _left(adapters.valkey, partition) == (0, 0, 0)


@scaled
async def test_a_drain_job_whose_worker_went_silent_is_retried_by_saq_and_resumes_its_batch(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    """SAQ's sweep, not hand-written claiming, hands a dead holder's partition to a live worker."""
    adapters, site = pipeline.adapters, pipeline.site_id
    assert adapters.valkey is not None
    assert adapters.settings.ingest_heartbeat == 1
    partition = partition_of(site, PARTITIONS)
    await StreamSpool(adapters.valkey, PARTITIONS).append([_record(site, n) for n in range(6)])
    # A worker took the partition's drain job, read, announced and inserted a batch — and died.
    processing = create_stream_processing(adapters, engine)
    queue = worker_queue(adapters)
    await processing.enqueue(queue, [partition])
    job = await queue.dequeue(timeout=5)
    assert job is not None
    assert job.function == DRAIN
    job.attempts, job.worker_id = 1, "a-dead-worker"
    await job.update(status=Status.ACTIVE)
    dying = processing.drainer(partition)
    await dying.ensure_group()
    processed = await _read_and_announce(dying, "t-dead")
    assert await insert_rows(adapters.event_store, processed.blob, "t-dead") == 6

    valkey = adapters.valkey
    async with running_worker(adapters, interval=0.05) as worker:
        await _until_empty(lambda: backlog(valkey, PARTITIONS))
        retried = await worker.queue.job(f"{DRAIN}:{partition}")

    assert sorted(await _stored(adapters, site)) == [1] * 6
    assert await _left(adapters.valkey, partition) == (0, 0, 0)
    totals = await pipeline.session_totals()
    assert (totals["visits"], totals["events"]) == (6, 6)  # the batch was applied to the visits once
    # The dead attempt kept the job's key taken (SAQ enqueues nothing under a key in use), so only
    # SAQ's sweep retrying that job can have handed the partition to the live worker.
    assert retried is not None
    assert retried.worker_id == worker.id


@scaled
async def test_a_resumed_batch_still_links_payments_to_the_visitors_it_identified(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    adapters, site = pipeline.adapters, pipeline.site_id
    assert adapters.valkey is not None
    partition = partition_of(site, PARTITIONS)
    identify = TrackEvent(
        website_id=site,
        page_url="https://sessions.example/welcome",
        event_type="identify",
        props={"email": "Late@Example.com"},
    )
    event = CapturedEvent(identify, round(time.time(), 3), "v-late", "", "", str(uuid.uuid4()))
    record = msgspec.msgpack.encode(Captured(CHROME_MAC, "FR", "", "", [event]))
    await StreamSpool(adapters.valkey, PARTITIONS).append([(site, record)])
    # A holder processed and announced the batch, then died before its insert.
    dying = create_stream_processing(adapters, engine).drainer(partition)
    await dying.ensure_group()
    await _read_and_announce(dying, "t-identify")

    told: list[Mapping[str, set[str]]] = []

    async def link(identified: Mapping[str, set[str]]) -> None:
        told.append(identified)

    successor = create_stream_processing(adapters, engine, on_identified=link).drainer(partition)
    assert await successor.resume() == 1  # the announced rows, as announced
    assert told == [{site: {email_hash("late@example.com")}}]


@scaled
async def test_a_stream_left_over_after_fewer_partitions_is_still_drained(pipeline: Pipeline) -> None:
    adapters, site = pipeline.adapters, pipeline.site_id
    assert adapters.valkey is not None
    # Appended while INGEST_PARTITIONS was 8 (this site's events in partition 6, say); now it is 4.
    for n in range(3):
        await adapters.valkey.xadd(stream_name(6), {b"r": _record(site, n)[1]})

    valkey = adapters.valkey
    async with running_worker(adapters, interval=0.05) as worker:
        await _until_empty(lambda: valkey.xlen(stream_name(6)))
        job = await worker.queue.job(f"{DRAIN}:6")

    assert sorted(await _stored(adapters, site)) == [1] * 3
    assert job is not None

"""Scaled mode's spool: web processes append to a Valkey stream, workers drain it exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from valkey.asyncio import Valkey
from valkey.exceptions import ResponseError

from datafast.db.config import sqlalchemy_config
from datafast.domain.ingest.log.stream import GROUP, STREAM, StreamDrainer, StreamSpool
from datafast.domain.ingest.log.writer import insert_rows
from datafast.domain.ingest.pipeline import create_stream_drainer
from datafast.lib.adapters import Adapters
from tests.helpers import captured_record
from tests.integration.ingest.conftest import Pipeline

pytestmark = pytest.mark.scaled
scaled = pytest.mark.parametrize("mode", ["scaled"], indirect=True)


def _record(site: str, n: int) -> bytes:
    return captured_record(site, n, at=round(time.time(), 3))


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


async def _left(client: Valkey) -> tuple[int, int, int]:
    """(stream entries, pending deliveries, announced batches) still in Valkey."""
    try:
        pending = int((await client.xpending(STREAM, GROUP))["pending"])
    except ResponseError:  # no worker has created the group yet
        pending = 0
    return await client.xlen(STREAM), pending, await client.hlen(STREAM + ":batches")


@scaled
async def test_two_workers_share_the_stream_and_store_each_event_once(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    adapters, site = pipeline.adapters, pipeline.site_id
    assert adapters.valkey is not None
    web = StreamSpool(adapters.valkey)
    await asyncio.gather(*(web.append([_record(site, n)]) for n in range(300)))
    assert await web.depth() == 300

    clients = [Valkey.from_url(adapters.settings.valkey_url or "") for _ in range(2)]
    workers = [create_stream_drainer(adapters, engine, client=c, max_rows=40) for c in clients]
    await workers[0].ensure_group()

    async def drain(worker: StreamDrainer) -> int:
        total = 0
        while written := await worker.drain_once():
            total += written
        return total

    shares = await asyncio.gather(*(drain(w) for w in workers))
    for client in clients:
        await client.aclose()

    assert sum(shares) == 300
    assert all(shares), "both workers took part"
    assert sorted(await _stored(adapters, site)) == [1] * 300
    assert await _left(adapters.valkey) == (0, 0, 0)


@scaled
async def test_a_worker_dying_after_its_insert_is_replaced_without_duplicates(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    adapters, site = pipeline.adapters, pipeline.site_id
    assert adapters.valkey is not None
    await StreamSpool(adapters.valkey).append([_record(site, n) for n in range(10)])
    await StreamSpool(adapters.valkey).append([_record(site, 10)])
    dying = create_stream_drainer(adapters, engine)
    await dying.ensure_group()
    # Its steps up to the crash: read, process, announce (with the sessions saved), insert — and
    # never acknowledge.
    entries = await dying.read()
    ids = [entry_id for entry_id, _ in entries]
    token = "stream:dying"
    processed = await dying.processor.run(
        [blob for _, blob in entries], lambda p: dying._persist(token, ids, p)
    )
    assert await insert_rows(adapters.event_store, processed.blob, token) == 11
    sessions_before = await adapters.valkey.keys("datafast:session:*")

    successor = create_stream_drainer(adapters, engine, claim_idle=0)
    assert await successor.recover() == 11  # the announced batch's rows, again under its token
    assert sorted(await _stored(adapters, site)) == [1] * 11
    assert await _left(adapters.valkey) == (0, 0, 0)
    # Not processed twice: the successor applied nothing more to the visits.
    assert sorted(await adapters.valkey.keys("datafast:session:*")) == sorted(sessions_before)
    totals = await pipeline.session_totals()
    assert (totals["visits"], totals["events"]) == (11, 11)


@scaled
async def test_a_worker_dying_before_announcing_leaves_entries_to_the_next(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    adapters, site = pipeline.adapters, pipeline.site_id
    assert adapters.valkey is not None
    await StreamSpool(adapters.valkey).append([_record(site, n) for n in range(5)])
    dying = create_stream_drainer(adapters, engine, claim_idle=3600)
    await dying.ensure_group()
    assert len(await dying.read()) == 5  # delivered to it, pending, then it dies

    patient = create_stream_drainer(adapters, engine, claim_idle=3600)
    assert await patient.recover() == 0  # not idle long enough: its owner may still be working
    successor = create_stream_drainer(adapters, engine, claim_idle=0)
    assert await successor.recover() == 5
    assert sorted(await _stored(adapters, site)) == [1] * 5
    assert await _left(adapters.valkey) == (0, 0, 0)

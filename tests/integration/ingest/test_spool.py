"""The spool and the batch writer against real chDB: replays after crashes write nothing twice."""

from __future__ import annotations

import functools
import uuid
from pathlib import Path

import pytest

from datafast.domain.ingest.log.spool import FileSpool
from datafast.domain.ingest.log.writer import BatchWriter, insert_rows
from datafast.lib.adapters import Adapters
from tests.helpers import captured_record
from tests.integration.ingest.conftest import Pipeline


def _records(site: str, n: int) -> list[tuple[str, bytes]]:
    return [(site, captured_record(site, i)) for i in range(n)]


async def _count(adapters: Adapters, site: str) -> int:
    result = await adapters.event_store.query(
        "SELECT count() FROM events WHERE website_id = {s:UUID}", parameters={"s": site}
    )
    return int(result.result_rows[0][0])


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_crash_after_insert_before_checkpoint_replays_without_duplicates(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    site, adapters, processor = pipeline.site_id, pipeline.adapters, pipeline.writer.processor
    spool = FileSpool(tmp_path / "crash")
    await spool.append(_records(site, 250))
    writer = BatchWriter(spool, adapters.event_store, processor)
    # Crash window: the first batch is processed, announced with its rows and inserted, but the
    # checkpoint never moves.
    batch = spool.take(100)
    assert batch is not None
    processed = await processor.run(batch.records, functools.partial(writer._persist, batch))
    assert await insert_rows(adapters.event_store, processed.blob, batch.token(spool.state.spool_id)) == 100
    await spool.close()
    del writer

    reopened = FileSpool(tmp_path / "crash")
    assert reopened.depth == 250
    # The announced batch goes in again with its rows and token (never processed twice), then the rest.
    assert await BatchWriter(reopened, adapters.event_store, processor, max_rows=1000).flush() == 250

    assert await _count(adapters, site) == 250
    await reopened.close()
    # Everything is checkpointed: a third start has nothing to replay.
    third = FileSpool(tmp_path / "crash")
    assert third.depth == 0
    assert third.pending_batch() is None
    await third.close()


async def test_torn_tail_is_cut_and_earlier_records_kept(tmp_path: Path) -> None:
    spool = FileSpool(tmp_path / "spool")
    await spool.append(_records(str(uuid.uuid4()), 10))
    await spool.close()
    segment = next((tmp_path / "spool").glob("segment-*.log"))
    # A record header promising more than was written, as a crash mid-write leaves it.
    segment.write_bytes(segment.read_bytes() + b"\x40\x00\x00\x00garbage")

    reopened = FileSpool(tmp_path / "spool")

    assert reopened.depth == 10
    await reopened.append(_records(str(uuid.uuid4()), 5))
    await reopened.close()
    third = FileSpool(tmp_path / "spool")
    assert third.depth == 15
    batch = third.take(100)
    assert batch is not None
    assert batch.count == 15
    await third.close()


async def test_the_spool_keeps_no_payloads_in_memory_and_refuses_past_its_bound(tmp_path: Path) -> None:
    spool = FileSpool(tmp_path / "spool", max_bytes=200_000)
    site = str(uuid.uuid4())
    appended: list[bytes] = []
    while spool.overloaded() is None:
        records = _records(site, 100)
        await spool.append(records)
        appended += [record for _, record in records]
    assert "waiting for ClickHouse" in (spool.overloaded() or "")
    assert spool.backlog_bytes >= 200_000
    assert spool.depth == len(appended)
    # Read back from the file, in order, in batches.
    first = spool.take(150)
    assert first is not None
    assert first.records == appended[:150]
    spool.commit(first)
    rest = spool.take(10**6)
    assert rest is not None
    assert rest.records == appended[150:]
    spool.commit(rest)
    assert (spool.overloaded(), spool.backlog_bytes, spool.depth) == (None, 0, 0)
    await spool.close()

"""The spool and the batch writer against real chDB: replays after crashes write nothing twice."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from datafast.domain.ingest.spool import FileSpool
from datafast.domain.ingest.writer import BatchWriter
from datafast.lib.adapters import Adapters
from tests.helpers import event_record


def _rows(site: str, n: int) -> list[bytes]:
    return [event_record(site, i) for i in range(n)]


async def _count(adapters: Adapters, site: str) -> int:
    result = await adapters.event_store.query(
        "SELECT count() FROM events WHERE website_id = {s:UUID}", parameters={"s": site}
    )
    return int(result.result_rows[0][0])


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_crash_after_insert_before_checkpoint_replays_without_duplicates(
    adapters: Adapters, tmp_path: Path
) -> None:
    site = str(uuid.uuid4())
    spool = FileSpool(tmp_path / "spool")
    await spool.append(_rows(site, 250))
    writer = BatchWriter(spool, adapters.event_store, max_rows=100)
    # Crash window: the first batch is announced and inserted, but the checkpoint never moves.
    batch = spool.take(100)
    assert batch is not None
    spool.announce(batch)
    await writer.write(batch)
    await spool.close()
    del writer

    reopened = FileSpool(tmp_path / "spool")
    assert reopened.depth == 250
    # A bigger batch size after the restart: only the announced range keeps the replay exact.
    assert await BatchWriter(reopened, adapters.event_store, max_rows=1000).flush() == 250

    assert await _count(adapters, site) == 250
    await reopened.close()
    # Everything is checkpointed: a third start has nothing to replay.
    third = FileSpool(tmp_path / "spool")
    assert third.depth == 0
    await third.close()


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_torn_tail_is_cut_and_earlier_records_kept(adapters: Adapters, tmp_path: Path) -> None:
    spool = FileSpool(tmp_path / "spool")
    await spool.append(_rows(str(uuid.uuid4()), 10))
    await spool.close()
    segment = next((tmp_path / "spool").glob("segment-*.log"))
    # A record header promising more than was written, as a crash mid-write leaves it.
    segment.write_bytes(segment.read_bytes() + b"\x40\x00\x00\x00garbage")

    reopened = FileSpool(tmp_path / "spool")

    assert reopened.depth == 10
    await reopened.append(_rows(str(uuid.uuid4()), 5))
    await reopened.close()
    third = FileSpool(tmp_path / "spool")
    assert third.depth == 15
    await third.close()

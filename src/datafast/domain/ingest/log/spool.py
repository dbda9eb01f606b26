"""Embedded mode's durable log: a captured request is on disk (fsynced) before /track answers 202.

The spool is an append-only log in ``DATA_DIR/spool``: segment files of records
``<length:u32><crc32:u32><payload>``, where a payload is one captured request
(:class:`~datafast.domain.ingest.capture.Captured`, msgpack). Appends from concurrent
requests are grouped into one write + fsync (group commit), so durability costs one fsync per
group, not per request. Nothing of the payloads is kept in memory: the writer reads them back
from the file (the page cache) in batches, and the spool refuses appends (``overloaded``) once
``max_bytes`` are waiting, so a stalled ClickHouse fills neither memory nor the disk.

The batch writer processes a batch, then *announces* it in the checkpoint file together with
its processed rows (``pending.rows``) *before* inserting them with an insert de-duplication
token made of the spool's id and the batch's exact byte range. After a crash the same rows are
inserted again with the same token, which ClickHouse ignores; they are never processed twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import struct
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from datafast.log import get_logger

__all__ = ("Batch", "FileSpool")

log = get_logger(__name__)
_HEADER = struct.Struct("<II")
SEGMENT_BYTES = 64 * 1024 * 1024
READ_BYTES = 4 * 1024 * 1024
BATCH_BYTES = 2 * 1024 * 1024
"""About how much of the spool one batch takes (a few thousand events): processing a batch runs on
the event loop beside capture, so a batch must stay short."""
MIN_FREE_BYTES = 256 * 1024 * 1024
"""Appends stop while the spool's disk has less than this free."""


@dataclass(frozen=True, slots=True)
class Batch:
    segment: int
    start: int
    end: int
    records: list[bytes]
    count: int

    def token(self, spool_id: str) -> str:
        return f"spool:{spool_id}:{self.segment}:{self.start}:{self.end}"


class _State(msgspec.Struct):
    spool_id: str
    segment: int = 1
    committed: int = 0
    """Byte offset in ``segment`` up to which every record is in ClickHouse."""
    pending: tuple[int, int, int] | None = None
    """(segment, start, end) of the batch being inserted; its rows are in ``pending.rows``."""


class FileSpool:
    def __init__(self, directory: Path, max_bytes: int = 1024 * 1024 * 1024) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._state_path = directory / "checkpoint.json"
        self._pending_path = directory / "pending.rows"
        self.state = self._read_state()
        self._depth = 0
        """Records durable on disk and not yet in ClickHouse."""
        self._backlog = 0
        """Their bytes (headers included)."""
        self._waiting: list[tuple[list[bytes], asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._durable = self._recover()
        """(segment, offset) up to which records are fsynced: set in one assignment (another thread)."""
        self._file = open(self._segment_path(self._durable[0]), "ab")  # noqa: SIM115
        self._disk_checked = (0.0, False)
        self.closed = False
        self.last_append = 0.0
        """``time.monotonic()`` of the last group commit."""
        self.syncs = 0
        """Group commits so far: records per sync = how well concurrent requests share one fsync."""

    # --- state -----------------------------------------------------------------------------

    def _segment_path(self, segment: int) -> Path:
        return self.directory / f"segment-{segment:08d}.log"

    def _read_state(self) -> _State:
        if self._state_path.exists():
            return msgspec.json.decode(self._state_path.read_bytes(), type=_State)
        state = _State(spool_id=secrets.token_hex(8))
        self._write_state(state)
        return state

    def _write_state(self, state: _State) -> None:
        _write_durably(self._state_path, msgspec.json.encode(state))
        _fsync_dir(self.directory)

    def _recover(self) -> tuple[int, int]:
        """Count every record after the checkpoint; cut a torn tail left by a crash mid-write."""
        segments = sorted(int(p.stem.split("-")[1]) for p in self.directory.glob("segment-*.log"))
        segment = self.state.segment
        for number in segments:
            if number < self.state.segment:
                self._segment_path(number).unlink()  # fully inserted before the crash
        last_segment, last_end = segment, 0
        for number in [s for s in segments if s >= segment] or [segment]:
            path = self._segment_path(number)
            if not path.exists():
                continue
            start = self.state.committed if number == segment else 0
            end = self._scan(number, path, start)
            last_segment, last_end = number, end
        if self._depth:
            log.info("spool replay", requests=self._depth, segment=segment, offset=self.state.committed)
        return last_segment, last_end

    def _scan(self, segment: int, path: Path, start: int) -> int:
        data = path.read_bytes()
        offset = 0
        good = 0
        while offset + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, offset)
            payload = data[offset + _HEADER.size : offset + _HEADER.size + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            offset += _HEADER.size + length
            good = offset
            if offset > start:
                self._depth += 1
                self._backlog += _HEADER.size + length
        if good < len(data):
            log.warning("spool: dropping a torn record after a crash", segment=segment, offset=good)
            with open(path, "r+b") as handle:
                handle.truncate(good)
                os.fsync(handle.fileno())
        return good

    # --- appending (request side) -----------------------------------------------------------

    def overloaded(self) -> str | None:
        """Why appends are refused now: the backlog is at ``max_bytes`` or the disk is nearly full."""
        if self._backlog >= self.max_bytes:
            return f"{self._backlog // (1024 * 1024)} MB of events are waiting for ClickHouse"
        checked_at, low = self._disk_checked
        now = time.monotonic()
        if now - checked_at > 1.0:  # statvfs at most once a second
            low = shutil.disk_usage(self.directory).free < MIN_FREE_BYTES
            self._disk_checked = (now, low)
        return "the spool's disk is nearly full" if low else None

    async def append(self, records: Sequence[tuple[str, bytes]]) -> None:
        """Return once the records ((website id, payload) pairs) are fsynced; raises if the disk fails."""
        payloads = [payload for _, payload in records]
        if self.closed:
            raise RuntimeError("the spool is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((payloads, future))
        self._wakeup.set()
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_forever())
        await future

    async def _flush_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            group, self._waiting = self._waiting, []
            if not group:
                continue
            try:
                count, size = await loop.run_in_executor(None, self._write_group, [p for p, _ in group])
            except Exception as exc:  # the disk failed: every waiter gets the error, nothing is acked
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self._depth += count
            self._backlog += size
            self.last_append = time.monotonic()
            for _, future in group:
                if not future.done():
                    future.set_result(None)

    def _write_group(self, groups: list[list[bytes]]) -> tuple[int, int]:
        segment, offset = self._durable
        if offset >= SEGMENT_BYTES:
            self._file.close()
            segment, offset = segment + 1, 0
            self._file = open(self._segment_path(segment), "ab")  # noqa: SIM115
            _fsync_dir(self.directory)
            self._durable = (segment, offset)
        buffer = bytearray()
        count = 0
        for payloads in groups:
            for payload in payloads:
                buffer += _HEADER.pack(len(payload), zlib.crc32(payload))
                buffer += payload
                count += 1
        self._file.write(buffer)
        self._file.flush()
        os.fdatasync(self._file.fileno())  # the data and the file's new size; nothing more is needed
        self._durable = (segment, offset + len(buffer))  # only now may the writer read them
        self.syncs += 1
        return count, len(buffer)

    @property
    def depth(self) -> int:
        """Requests durable in the spool and not yet in ClickHouse."""
        return self._depth

    @property
    def backlog_bytes(self) -> int:
        return self._backlog

    # --- draining (writer side) -------------------------------------------------------------

    def pending_batch(self) -> tuple[Batch, bytes] | None:
        """The batch announced before a crash (or a failed insert) and its processed rows."""
        pending = self.state.pending
        if pending is None:
            return None
        segment, start, end = pending
        records = self._read(segment, start, end, 10**9)
        return Batch(segment, start, end, records, len(records)), self._pending_path.read_bytes()

    def take(self, max_rows: int, max_bytes: int = BATCH_BYTES) -> Batch | None:
        """Up to ``max_rows`` durable records (and about ``max_bytes``) after the checkpoint, of one
        segment, in order."""
        segment, start = self.state.segment, self.state.committed
        durable_segment, durable_offset = self._durable
        # Records written after a segment change: the older segment is done once it is read through.
        while segment < durable_segment and start >= self._segment_path(segment).stat().st_size:
            segment, start = segment + 1, 0
        end = durable_offset if segment == durable_segment else None
        records = self._read(segment, start, end, max_rows, max_bytes)
        if not records:
            return None
        size = sum(_HEADER.size + len(r) for r in records)
        return Batch(segment, start, start + size, records, len(records))

    def _read(
        self, segment: int, start: int, end: int | None, max_rows: int, max_bytes: int = 2**62
    ) -> list[bytes]:
        """Records of ``segment`` from byte ``start`` (up to ``end``, a record boundary), stopping
        after ``max_rows`` records or once ``max_bytes`` are read."""
        records: list[bytes] = []
        with open(self._segment_path(segment), "rb") as handle:
            offset = start
            want = READ_BYTES
            while len(records) < max_rows and (end is None or offset < end) and offset - start < max_bytes:
                handle.seek(offset)
                data = handle.read(want if end is None else min(want, end - offset))
                position = 0
                while len(records) < max_rows and position + _HEADER.size <= len(data):
                    length, _ = _HEADER.unpack_from(data, position)
                    stop = position + _HEADER.size + length
                    if stop > len(data):
                        break
                    records.append(data[position + _HEADER.size : stop])
                    position = stop
                if position == 0:
                    if len(data) >= _HEADER.size and want < _HEADER.size + length:
                        want = _HEADER.size + length  # one record bigger than a read: read it whole
                        continue
                    break
                offset += position
                want = READ_BYTES
        return records

    def announce(self, batch: Batch, rows: bytes) -> None:
        """Keep ``batch``'s processed rows and mark it as being inserted (both durable)."""
        _write_durably(self._pending_path, rows)
        self.state.pending = (batch.segment, batch.start, batch.end)
        if batch.segment != self.state.segment:
            self.state.segment, self.state.committed = batch.segment, 0
        self._write_state(self.state)

    def commit(self, batch: Batch) -> None:
        """``batch`` is in ClickHouse: move the checkpoint past it."""
        self._depth -= batch.count
        self._backlog -= batch.end - batch.start
        self.state.segment, self.state.committed, self.state.pending = batch.segment, batch.end, None
        self._write_state(self.state)
        for old in self.directory.glob("segment-*.log"):
            if int(old.stem.split("-")[1]) < batch.segment:
                old.unlink()

    async def close(self) -> None:
        self.closed = True
        if self._flusher is not None:
            while self._waiting:
                self._wakeup.set()
                await asyncio.sleep(0.001)
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        self._file.close()


def _write_durably(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(".tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

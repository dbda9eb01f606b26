"""The durable spool: an accepted event is on disk (fsynced) before /track answers 202.

Embedded mode keeps an append-only log in ``DATA_DIR/spool``: segment files of records
``<length:u32><crc32:u32><payload>``, where a payload is one JSONEachRow line ready for
ClickHouse. Appends from concurrent requests are grouped into one write + fsync (group
commit), so durability costs one fsync per group, not per event.

The batch writer reads what is appended, inserts it in batches and checkpoints. Each batch
is announced in the checkpoint file *before* its insert and carries an insert
de-duplication token made of the spool's id and the batch's exact byte range: after a
crash the same range is inserted again with the same token, which ClickHouse ignores.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import struct
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import msgspec

from datafast.log import get_logger

__all__ = ("Batch", "FileSpool")

log = get_logger(__name__)
_HEADER = struct.Struct("<II")
SEGMENT_BYTES = 64 * 1024 * 1024


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
    """(segment, start, end) of the batch being inserted, written before the insert."""


class FileSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._state_path = directory / "checkpoint.json"
        self.state = self._read_state()
        # Records durable on disk and not yet handed to the writer: (segment, end offset, payload).
        self._ready: deque[tuple[int, int, bytes]] = deque()
        self._waiting: list[tuple[list[bytes], asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._append_segment, self._append_offset = self._recover()
        self._file = open(self._segment_path(self._append_segment), "ab")  # noqa: SIM115
        self.closed = False
        self.syncs = 0
        """Group commits so far: events per sync = how well concurrent requests share one fsync."""

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
        temporary = self._state_path.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            handle.write(msgspec.json.encode(state))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._state_path)
        _fsync_dir(self.directory)

    def _recover(self) -> tuple[int, int]:
        """Queue every record after the checkpoint; cut a torn tail left by a crash mid-write."""
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
        if self._ready:
            log.info("spool replay", events=len(self._ready), segment=segment, offset=self.state.committed)
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
                self._ready.append((segment, offset, payload))
        if good < len(data):
            log.warning("spool: dropping a torn record after a crash", segment=segment, offset=good)
            with open(path, "r+b") as handle:
                handle.truncate(good)
                os.fsync(handle.fileno())
        return good

    # --- appending (request side) -----------------------------------------------------------

    async def append(self, payloads: list[bytes]) -> None:
        """Return once ``payloads`` are fsynced. Raises if the disk write fails."""
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
                records = await loop.run_in_executor(None, self._write_group, [p for p, _ in group])
            except Exception as exc:  # the disk failed: every waiter gets the error, nothing is acked
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self._ready.extend(records)
            for _, future in group:
                if not future.done():
                    future.set_result(None)

    def _write_group(self, groups: list[list[bytes]]) -> list[tuple[int, int, bytes]]:
        if self._append_offset >= SEGMENT_BYTES:
            self._file.close()
            self._append_segment += 1
            self._append_offset = 0
            self._file = open(self._segment_path(self._append_segment), "ab")  # noqa: SIM115
            _fsync_dir(self.directory)
        buffer = bytearray()
        records = []
        offset = self._append_offset
        for payloads in groups:
            for payload in payloads:
                buffer += _HEADER.pack(len(payload), zlib.crc32(payload))
                buffer += payload
                offset += _HEADER.size + len(payload)
                records.append((self._append_segment, offset, payload))
        self._file.write(buffer)
        self._file.flush()
        os.fdatasync(self._file.fileno())  # the data and the file's new size; nothing more is needed
        self._append_offset = offset
        self.syncs += 1
        return records

    @property
    def depth(self) -> int:
        """Events durable in the spool and not yet in ClickHouse."""
        return len(self._ready)

    # --- draining (writer side) -------------------------------------------------------------

    def pending_batch(self) -> Batch | None:
        """The batch announced before a crash, to be inserted again with the same token."""
        pending = self.state.pending
        if pending is None:
            return None
        segment, _, end = pending
        return self.take(max_rows=10**9, until=(segment, end))

    def take(self, max_rows: int, until: tuple[int, int] | None = None) -> Batch | None:
        """Up to ``max_rows`` ready records of one segment, in order."""
        if not self._ready:
            return None
        segment = self._ready[0][0]
        start = self.state.committed if segment == self.state.segment else 0
        rows: list[bytes] = []
        end = start
        for record_segment, record_end, payload in self._ready:
            if record_segment != segment or len(rows) >= max_rows:
                break
            if until is not None and (record_segment, record_end) > until:
                break
            rows.append(payload)
            end = record_end
        if not rows:
            return None
        return Batch(segment, start, end, rows, len(rows))

    def announce(self, batch: Batch) -> None:
        self.state.pending = (batch.segment, batch.start, batch.end)
        if batch.segment != self.state.segment:
            self.state.segment, self.state.committed = batch.segment, 0
        self._write_state(self.state)

    def commit(self, batch: Batch) -> None:
        """``batch`` is in ClickHouse: drop it from the queue and move the checkpoint past it."""
        for _ in range(batch.count):
            self._ready.popleft()
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


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

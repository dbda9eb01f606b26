"""Import jobs: accept a file, run it into ``imported_daily``, list and delete imports.

The request checks the file's shape (a 4xx at once for a file that is not the export named) and
queues the ``import`` job; the job parses it, stores the daily rows and records its progress and
summary on the ``imports`` row. Imported rows hold no visitor id or email hash, so privacy erase
and retention leave them alone (the issue 16 contract); deleting the import deletes its rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import undefer

from datafast.db.models import Import, Website
from datafast.domain.imports.parsers import SOURCES, Daily, ImportFileError, check, parse
from datafast.errors import InvalidInput, NotFound
from datafast.lib.eventstore import EventStore

__all__ = ("COLUMNS", "MAX_FILE_BYTES", "create_import", "delete_import", "list_imports", "run_import")

MAX_FILE_BYTES = 512 * 1024 * 1024
COLUMNS = [
    *("website_id", "import_id", "day", "dimension", "value"),
    *("visitors", "visits", "pageviews", "bounces", "visit_duration"),
]
_CHUNK = 50_000
_SYNC = {"mutations_sync": 2}


async def create_import(
    db: AsyncSession, website: Website, source: str, filename: str, data: bytes, requested_by: str
) -> Import:
    """A queued import of ``data`` (added to the session; the caller commits, then queues the job)."""
    if source not in SOURCES:
        raise InvalidInput(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"the file is over {MAX_FILE_BYTES // 2**20} MiB")
    try:
        check(source, data)
    except ImportFileError as error:
        raise InvalidInput(f"not a {source} export: {error}") from None
    row = Import(
        website_id=website.id,
        source=source,
        filename=filename[:255] or "upload",
        status="queued",
        progress=0.0,
        summary=[],
        rows=0,
        payload=data,
        requested_by=requested_by,
    )
    db.add(row)
    await db.flush()
    return row


async def list_imports(db: AsyncSession, website_id: uuid.UUID) -> Sequence[Import]:
    found = await db.execute(
        select(Import).where(Import.website_id == website_id).order_by(Import.created_at.desc())
    )
    return found.scalars().all()


async def _delete_rows(store: EventStore, import_id: uuid.UUID) -> None:
    on_cluster = f" ON CLUSTER {store.cluster}" if store.cluster else ""
    table = "imported_daily_local" if store.cluster else "imported_daily"
    await store.command(
        f"ALTER TABLE {store.database}.{table}{on_cluster} DELETE WHERE import_id = {{i:UUID}}",
        parameters={"i": str(import_id)},
        settings=_SYNC,
    )


async def delete_import(db: AsyncSession, store: EventStore, website: Website, import_id: uuid.UUID) -> None:
    row = await db.get(Import, import_id)
    if row is None or row.website_id != website.id:
        raise NotFound("No such import on this site")
    await _delete_rows(store, import_id)
    await db.delete(row)


def _rows(website_id: uuid.UUID, import_id: uuid.UUID, daily: Daily) -> list[list[object]]:
    return [
        [str(website_id), str(import_id), day, dimension, value, *sums]
        for (day, dimension, value), sums in sorted(daily.items())
    ]


async def _update(engine: AsyncEngine, import_id: uuid.UUID, **values: object) -> None:
    async with AsyncSession(engine) as db:
        row = await db.get(Import, import_id)
        if row is not None:
            for name, value in values.items():
                setattr(row, name, value)
            await db.commit()


async def run_import(engine: AsyncEngine, store: EventStore, import_id: uuid.UUID) -> Import | None:
    """Parse the import's file and store its daily rows, reporting progress on its row.

    Run again (a retried job), it first deletes what an earlier attempt stored. Returns the
    finished row (None when there is nothing to run: deleted, or already done)."""
    async with AsyncSession(engine, expire_on_commit=False) as db:
        row = await db.get(Import, import_id, options=[undefer(Import.payload)])
        if row is None or row.payload is None:
            return None
        website = await db.get(Website, row.website_id)
        if website is None:
            return None
        rerun = row.status != "queued"  # an earlier attempt may have stored rows
        source, data, timezone, website_id = row.source, row.payload, website.timezone, website.id
        row.status, row.progress, row.error = "running", 0.0, None
        await db.commit()
    if rerun:
        await _delete_rows(store, import_id)

    try:
        return await _parse_and_store(engine, store, import_id, source, data, timezone, website_id)
    except Exception as error:  # kept for the job's retry (the file stays until it is done)
        await _update(engine, import_id, status="failed", error=f"{type(error).__name__}: {error}")
        raise


async def _parse_and_store(
    engine: AsyncEngine,
    store: EventStore,
    import_id: uuid.UUID,
    source: str,
    data: bytes,
    timezone: str,
    website_id: uuid.UUID,
) -> Import | None:
    parsed_share = [0.0]
    done = asyncio.Event()

    async def report() -> None:  # the parser runs in a thread; its progress is written from here
        while not done.is_set():
            await _update(engine, import_id, progress=round(parsed_share[0] * 0.5, 3))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 1.0)

    reporter = asyncio.create_task(report())
    try:
        parsed = await asyncio.to_thread(parse, source, data, timezone, partial(parsed_share.__setitem__, 0))
    except ImportFileError as error:  # the file is wrong: no retry will help
        await _update(
            engine, import_id, status="failed", error=str(error), payload=None, finished_at=datetime.now(UTC)
        )
        return None
    finally:
        done.set()
        await reporter
    rows = _rows(website_id, import_id, parsed.daily)
    await _update(engine, import_id, progress=0.5)
    for start in range(0, len(rows), _CHUNK):
        await store.insert("imported_daily", rows[start : start + _CHUNK], COLUMNS)
        await _update(
            engine, import_id, progress=round(0.5 + 0.5 * min(start + _CHUNK, len(rows)) / len(rows), 3)
        )
    days = [day for day, _, _ in parsed.daily]
    await _update(
        engine,
        import_id,
        status="done",
        progress=1.0,
        rows=len(rows),
        summary=[item.to_dict() for item in parsed.summary],
        first_day=min(days) if days else None,
        last_day=max(days) if days else None,
        payload=None,
        finished_at=datetime.now(UTC),
    )
    async with AsyncSession(engine) as db:
        return await db.get(Import, import_id)

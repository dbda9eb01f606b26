"""Imports: upload another tool's export for a site, follow its job, delete it.

Admins of the site only. The body of ``POST …/imports?source=plausible|umami|ga4`` is the export
file itself (``Content-Type`` is not looked at). See :mod:`datafast.domain.imports`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, TypeAlias

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Import, Role, Website
from datafast.domain.accounts.access import Principal
from datafast.domain.analytics.cache import ResultCache
from datafast.domain.imports.jobs import IMPORT_TIMEOUT, RUN_IMPORT
from datafast.domain.imports.service import MAX_FILE_BYTES, create_import, delete_import, list_imports
from datafast.errors import NotFound
from datafast.lib.eventstore import EventStore
from datafast.settings import Settings

__all__ = ("ImportController", "ImportRead")

Db: TypeAlias = NamedDependency[AsyncSession]
ADMIN = {"site_role": Role.ADMIN}


class ImportSummaryItem(msgspec.Struct):
    item: str
    imported: bool
    note: str = ""


class ImportRead(msgspec.Struct):
    id: uuid.UUID
    source: str
    filename: str
    status: str
    """``queued``, ``running``, ``done`` or ``failed``."""
    progress: float
    """0 to 1."""
    summary: list[ImportSummaryItem]
    """What was and was not importable."""
    error: str | None
    first_day: date | None
    last_day: date | None
    rows: int
    requested_by: str
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, row: Import) -> ImportRead:
        return cls(
            id=row.id,
            source=row.source,
            filename=row.filename,
            status=row.status,
            progress=row.progress,
            summary=msgspec.convert(row.summary or [], list[ImportSummaryItem]),
            error=row.error,
            first_day=row.first_day,
            last_day=row.last_day,
            rows=row.rows,
            requested_by=row.requested_by,
            created_at=row.created_at,
            finished_at=row.finished_at,
        )


def _requested_by(principal: Principal) -> str:
    who = principal.user.email if principal.user is not None else "unknown"
    return f"{who} (API key)" if principal.api_key_id is not None else who


async def _owned(db: AsyncSession, website: Website, import_id: FromPath[uuid.UUID]) -> Import:
    row = await db.get(Import, import_id)
    if row is None or row.website_id != website.id:
        raise NotFound("No such import on this site")
    return row


class ImportController(Controller):
    path = "/api/v1/sites/{website_id:uuid}/imports"
    tags = ["imports"]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        opt=ADMIN,
        request_max_body_size=MAX_FILE_BYTES,
        summary="Import a site's history from Plausible, Umami or Google Analytics 4",
        description="The body is the export file: Plausible's CSV export zip, Umami's website_event CSV "
        "(or a zip holding it), or GA4's BigQuery events_* export as newline-delimited JSON (gzip allowed). "
        "A file that is not the named export answers 400. The import runs as a job: poll it for its "
        "progress and its summary of what was and was not importable.",
    )
    async def upload(
        self,
        website: NamedDependency[Website],
        principal: NamedDependency[Principal],
        db_session: Db,
        request: Request[Any, Any, Any],
        source: Annotated[str, QueryParameter(description="plausible, umami or ga4")],
        filename: Annotated[str, QueryParameter(max_length=255)] = "",
    ) -> ImportRead:
        data = await request.body()
        row = await create_import(db_session, website, source, filename, data, _requested_by(principal))
        await db_session.commit()  # the job reads the row: queued only once it is committed
        await request.app.state.adapters.queue.enqueue(
            RUN_IMPORT, import_id=str(row.id), timeout=IMPORT_TIMEOUT
        )
        return ImportRead.of(row)

    @get("/", opt=ADMIN, summary="The site's imports, newest first")
    async def imports(self, website: NamedDependency[Website], db_session: Db) -> list[ImportRead]:
        return [ImportRead.of(row) for row in await list_imports(db_session, website.id)]

    @get("/{import_id:uuid}", opt=ADMIN, summary="One import: its status, progress and summary")
    async def read(
        self, website: NamedDependency[Website], import_id: FromPath[uuid.UUID], db_session: Db
    ) -> ImportRead:
        return ImportRead.of(await _owned(db_session, website, import_id))

    @delete(
        "/{import_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        opt=ADMIN,
        summary="Delete an import and its imported data",
    )
    async def remove(
        self,
        website: NamedDependency[Website],
        import_id: FromPath[uuid.UUID],
        db_session: Db,
        event_store: NamedDependency[EventStore],
        settings: NamedDependency[Settings],
        request: Request[Any, Any, Any],
    ) -> None:
        await delete_import(db_session, event_store, website, import_id)
        await db_session.commit()
        cache = ResultCache(request.app.state.adapters.cache, settings.stats_cache_ttl)
        await cache.invalidate([str(website.id)])

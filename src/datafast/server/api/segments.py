"""Saved segments and chart annotations: ``/api/v1/sites/{website_id}/segments`` and ``/annotations``.

Both are the team's own: any member (a session or an API key with ``read``) lists them; writing
needs the admin role and a read-write credential (the default of
:func:`datafast.server.auth.site_scope_guard`). Neither opts in to share links, which get 404.
The rules live in :mod:`datafast.domain.sites.segments` and :mod:`datafast.domain.sites.annotations`.
"""

from __future__ import annotations

import uuid
from typing import TypeAlias

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Website
from datafast.domain.accounts.access import Principal
from datafast.domain.sites import segments
from datafast.domain.sites.annotations import (
    AnnotationCreate,
    AnnotationRead,
    create_annotation,
    delete_annotation,
    list_annotations,
)
from datafast.domain.sites.segments import SegmentCreate, SegmentRead, SegmentUpdate
from datafast.server.api.stats import EndParam, StartParam

__all__ = ("AnnotationController", "SegmentController")

Db: TypeAlias = NamedDependency[AsyncSession]
SITE = "/api/v1/sites/{website_id:uuid}"


class SegmentController(Controller):
    path = SITE + "/segments"
    tags = ["segments"]

    @get("/", summary="The site's saved segments (named filter sets), by name")
    async def list_segments(self, website: NamedDependency[Website], db_session: Db) -> list[SegmentRead]:
        return [SegmentRead.of(s) for s in await segments.list_segments(db_session, website.id)]

    @post("/", status_code=HTTP_201_CREATED, summary="Save a filter set under a name (admins)")
    async def create_segment(
        self,
        data: JSONBody[SegmentCreate],
        website: NamedDependency[Website],
        principal: NamedDependency[Principal],
        db_session: Db,
    ) -> SegmentRead:
        segment = await segments.create_segment(db_session, website.id, data, created_by=principal.user_id)
        return SegmentRead.of(segment)

    @patch("/{segment_id:uuid}", summary="Rename a segment or replace its filters (admins)")
    async def update_segment(
        self,
        segment_id: FromPath[uuid.UUID],
        data: JSONBody[SegmentUpdate],
        website: NamedDependency[Website],
        db_session: Db,
    ) -> SegmentRead:
        return SegmentRead.of(await segments.update_segment(db_session, website.id, segment_id, data))

    @delete("/{segment_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a segment (admins)")
    async def delete_segment(
        self, segment_id: FromPath[uuid.UUID], website: NamedDependency[Website], db_session: Db
    ) -> None:
        await segments.delete_segment(db_session, website.id, segment_id)


class AnnotationController(Controller):
    path = SITE + "/annotations"
    tags = ["annotations"]

    @get("/", summary="The site's notes on the chart, by day (optionally from start_date to end_date)")
    async def list_annotations(
        self,
        website: NamedDependency[Website],
        db_session: Db,
        start_date: StartParam = None,
        end_date: EndParam = None,
    ) -> list[AnnotationRead]:
        found = await list_annotations(db_session, website.id, start_date, end_date)
        return [AnnotationRead.of(a) for a in found]

    @post("/", status_code=HTTP_201_CREATED, summary="Add a note on a day of the chart (admins)")
    async def create_annotation(
        self,
        data: JSONBody[AnnotationCreate],
        website: NamedDependency[Website],
        principal: NamedDependency[Principal],
        db_session: Db,
    ) -> AnnotationRead:
        annotation = await create_annotation(db_session, website.id, data, created_by=principal.user_id)
        return AnnotationRead.of(annotation)

    @delete("/{annotation_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Delete a note (admins)")
    async def delete_annotation(
        self, annotation_id: FromPath[uuid.UUID], website: NamedDependency[Website], db_session: Db
    ) -> None:
        await delete_annotation(db_session, website.id, annotation_id)

"""Saved segments: named filter sets of a site's dashboard, shared with its team.

A segment holds the Stats API's filters exactly as a ``/query`` body holds them
(:class:`~datafast.domain.analytics.schemas.Filter`), so applying one gives the numbers the same
filters give when passed directly. Rules held here:

- every filter names a dimension the Stats API knows (:func:`~datafast.domain.analytics.catalog.dimension`);
- a value is never empty and never contains ``|``: the dashboard keeps filters in its URL as
  ``source==Google|Bing``, where ``|`` separates values, and a segment must reopen there as saved;
- names are unique per site (409 otherwise), and a site keeps at most :data:`MAX_SEGMENTS`.

Any member reads them; writing needs the admin role (the default rule of site routes).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Segment
from datafast.domain.analytics.catalog import DIMENSIONS, PROP_PREFIX, dimension
from datafast.domain.analytics.schemas import Filter
from datafast.errors import Conflict, InvalidInput, NotFound

__all__ = (
    "MAX_SEGMENTS",
    "SegmentCreate",
    "SegmentRead",
    "SegmentUpdate",
    "create_segment",
    "delete_segment",
    "list_segments",
    "update_segment",
)

MAX_SEGMENTS = 100
MAX_FILTERS = 20
"""As many as one Stats API request takes."""

SegmentName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, examples=["Paid traffic, EU"])]
SegmentFilters = Annotated[
    list[Filter],
    msgspec.Meta(
        min_length=1,
        max_length=MAX_FILTERS,
        description="The Stats API's filters, as in a /query body",
        examples=[[{"dimension": "source", "operator": "is", "values": ["Google", "Bing"]}]],
    ),
]


class SegmentCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: SegmentName
    filters: SegmentFilters


class SegmentUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: SegmentName | None = None
    filters: SegmentFilters | None = None


class SegmentRead(msgspec.Struct):
    id: uuid.UUID
    name: str
    filters: list[Filter]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, segment: Segment) -> SegmentRead:
        return cls(
            segment.id,
            segment.name,
            msgspec.convert(segment.filters, list[Filter]),
            segment.created_at,
            segment.updated_at,
        )


def _invalid(key: str, message: str) -> InvalidInput:
    return InvalidInput(message, extra={"errors": [{"key": key, "message": message}]})


def _name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise _invalid("name", "A segment needs a name")
    return name


def _filters(filters: Sequence[Filter]) -> list[dict[str, object]]:
    """The filters as stored, once each is one the Stats API and the dashboard can apply."""
    stored: list[dict[str, object]] = []
    for index, item in enumerate(filters):
        key = f"filters[{index}]"
        if dimension(item.dimension) is None:
            known = ", ".join(DIMENSIONS)
            raise _invalid(
                f"{key}.dimension",
                f"unknown dimension {item.dimension!r}: use one of {known}, or {PROP_PREFIX}<key>",
            )
        for value in item.values:
            if not value or "|" in value:
                raise _invalid(f"{key}.values", "a value may not be empty nor contain '|'")
        stored.append(msgspec.to_builtins(item))
    return stored


async def list_segments(db: AsyncSession, website_id: uuid.UUID) -> Sequence[Segment]:
    return (
        await db.scalars(
            select(Segment).where(Segment.website_id == website_id).order_by(Segment.name, Segment.id)
        )
    ).all()


async def _check_name_free(
    db: AsyncSession, website_id: uuid.UUID, name: str, segment_id: uuid.UUID | None
) -> None:
    query = select(Segment.id).where(Segment.website_id == website_id, Segment.name == name)
    if segment_id is not None:
        query = query.where(Segment.id != segment_id)
    if await db.scalar(query):
        raise Conflict(f"This site already has a segment named {name!r}")


async def create_segment(
    db: AsyncSession, website_id: uuid.UUID, data: SegmentCreate, *, created_by: uuid.UUID | None
) -> Segment:
    name, filters = _name(data.name), _filters(data.filters)
    count = await db.scalar(select(func.count()).select_from(Segment).where(Segment.website_id == website_id))
    if (count or 0) >= MAX_SEGMENTS:
        raise Conflict(f"A site keeps at most {MAX_SEGMENTS} segments: delete one first")
    await _check_name_free(db, website_id, name, None)
    segment = Segment(website_id=website_id, name=name, filters=filters, created_by_id=created_by)
    db.add(segment)
    await db.flush()
    return segment


async def update_segment(
    db: AsyncSession, website_id: uuid.UUID, segment_id: uuid.UUID, data: SegmentUpdate
) -> Segment:
    """Rename a segment or replace its filters."""
    segment = await db.scalar(
        select(Segment).where(Segment.id == segment_id, Segment.website_id == website_id)
    )
    if segment is None:
        raise NotFound("No such segment")
    if data.name is not None:
        name = _name(data.name)
        await _check_name_free(db, website_id, name, segment.id)
        segment.name = name
    if data.filters is not None:
        segment.filters = _filters(data.filters)
    segment.updated_at = datetime.now(UTC)
    await db.flush()
    return segment


async def delete_segment(db: AsyncSession, website_id: uuid.UUID, segment_id: uuid.UUID) -> None:
    result = await db.execute(
        delete(Segment).where(Segment.id == segment_id, Segment.website_id == website_id)
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound("No such segment")

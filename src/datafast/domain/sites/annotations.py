"""Annotations: a note on a day of a site's chart ("launched on Product Hunt").

A note belongs to a calendar day in the site's timezone, as the Stats API's date ranges do, so
it sits on that day's bucket of the dashboard's chart. Notes are internal to the team: any member
reads them, admins add and delete them, and a share link never sees them (its routes do not
include these). Rules held here: the text is 1 to :data:`MAX_TEXT` characters once trimmed, the
day lies in the range the Stats API reads (from 2000-01-01 to a year ahead), and a site keeps at
most :data:`MAX_ANNOTATIONS` notes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import msgspec
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Annotation
from datafast.domain.analytics.dates import EARLIEST_DAY
from datafast.errors import Conflict, InvalidInput, NotFound

__all__ = (
    "MAX_ANNOTATIONS",
    "MAX_TEXT",
    "AnnotationCreate",
    "AnnotationRead",
    "create_annotation",
    "delete_annotation",
    "list_annotations",
)

MAX_TEXT = 200
MAX_ANNOTATIONS = 1000
_DAYS_AHEAD = timedelta(days=366)


class AnnotationCreate(msgspec.Struct, forbid_unknown_fields=True):
    # dt.date: a field named ``date`` would shadow the type when msgspec resolves the annotation.
    date: Annotated[
        dt.date, msgspec.Meta(description="A day in the site's timezone", examples=["2026-10-14"])
    ]
    text: Annotated[
        str, msgspec.Meta(min_length=1, max_length=MAX_TEXT, examples=["Launched on Product Hunt"])
    ]


class AnnotationRead(msgspec.Struct):
    id: uuid.UUID
    date: dt.date
    text: str
    created_at: datetime

    @classmethod
    def of(cls, annotation: Annotation) -> AnnotationRead:
        return cls(annotation.id, annotation.day, annotation.text, annotation.created_at)


def _invalid(key: str, message: str) -> InvalidInput:
    return InvalidInput(message, extra={"errors": [{"key": key, "message": message}]})


def _check_day(key: str, day: date) -> None:
    latest = datetime.now(UTC).date() + _DAYS_AHEAD
    if not EARLIEST_DAY <= day <= latest:
        raise _invalid(key, f"a day between {EARLIEST_DAY.isoformat()} and {latest.isoformat()}")


async def list_annotations(
    db: AsyncSession, website_id: uuid.UUID, start: date | None = None, end: date | None = None
) -> Sequence[Annotation]:
    """The site's notes from ``start`` to ``end`` (both included; either may be open), by day."""
    if start is not None and end is not None and end < start:
        raise _invalid("end_date", "end_date is before start_date")
    query = select(Annotation).where(Annotation.website_id == website_id)
    if start is not None:
        query = query.where(Annotation.day >= start)
    if end is not None:
        query = query.where(Annotation.day <= end)
    return (await db.scalars(query.order_by(Annotation.day, Annotation.created_at, Annotation.id))).all()


async def create_annotation(
    db: AsyncSession, website_id: uuid.UUID, data: AnnotationCreate, *, created_by: uuid.UUID | None
) -> Annotation:
    text = " ".join(data.text.split())
    if not text:
        raise _invalid("text", "A note needs some text")
    _check_day("date", data.date)
    count = await db.scalar(
        select(func.count()).select_from(Annotation).where(Annotation.website_id == website_id)
    )
    if (count or 0) >= MAX_ANNOTATIONS:
        raise Conflict(f"A site keeps at most {MAX_ANNOTATIONS} notes: delete some first")
    annotation = Annotation(website_id=website_id, day=data.date, text=text, created_by_id=created_by)
    db.add(annotation)
    await db.flush()
    return annotation


async def delete_annotation(db: AsyncSession, website_id: uuid.UUID, annotation_id: uuid.UUID) -> None:
    result = await db.execute(
        delete(Annotation).where(Annotation.id == annotation_id, Annotation.website_id == website_id)
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound("No such note")

"""Goals: the conversions a site counts (a pageview of a path, or a custom event)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Goal
from datafast.errors import Conflict, InvalidInput, NotFound

__all__ = ("create_goal", "delete_goal", "list_goals")

_EVENT_NAME = re.compile(r"^[\w .:/-]{1,120}$")


def _invalid(key: str, message: str) -> InvalidInput:
    return InvalidInput(message, extra={"errors": [{"key": key, "message": message}]})


async def list_goals(db: AsyncSession, website_id: uuid.UUID) -> Sequence[Goal]:
    return (
        await db.scalars(select(Goal).where(Goal.website_id == website_id).order_by(Goal.created_at))
    ).all()


async def create_goal(
    db: AsyncSession, website_id: uuid.UUID, name: str, kind: str, path: str | None, event_name: str | None
) -> Goal:
    name = name.strip()
    if not name:
        raise _invalid("name", "A goal needs a name")
    if kind == "pageview":
        path = (path or "").strip()
        if not path.startswith("/") or any(ch.isspace() for ch in path):
            raise _invalid("path", "A pageview goal needs a path starting with / (use * as a wildcard)")
        event_name = None
    else:
        event_name = (event_name or "").strip()
        if not _EVENT_NAME.match(event_name):
            raise _invalid("event_name", "An event goal needs the event's name (letters, digits, _ . : / -)")
        path = None
    if await db.scalar(select(Goal.id).where(Goal.website_id == website_id, Goal.name == name)):
        raise Conflict(f"This site already has a goal named {name!r}")
    goal = Goal(website_id=website_id, name=name, kind=kind, path=path, event_name=event_name)
    db.add(goal)
    await db.flush()
    return goal


async def delete_goal(db: AsyncSession, website_id: uuid.UUID, goal_id: uuid.UUID) -> None:
    result = await db.execute(delete(Goal).where(Goal.id == goal_id, Goal.website_id == website_id))
    if not getattr(result, "rowcount", 0):
        raise NotFound("No such goal")

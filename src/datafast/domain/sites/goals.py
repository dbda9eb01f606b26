"""Goals: the conversions a site counts (a pageview of a path, or a custom event)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Goal
from datafast.errors import Conflict, InvalidInput, NotFound

__all__ = ("create_goal", "delete_goal", "list_goals", "update_goal")

_EVENT_NAME = re.compile(r"^[\w .:/-]{1,120}$")


def _invalid(key: str, message: str) -> InvalidInput:
    return InvalidInput(message, extra={"errors": [{"key": key, "message": message}]})


async def list_goals(db: AsyncSession, website_id: uuid.UUID) -> Sequence[Goal]:
    return (
        await db.scalars(select(Goal).where(Goal.website_id == website_id).order_by(Goal.created_at))
    ).all()


def _validated(
    name: str, kind: str, path: str | None, event_name: str | None
) -> tuple[str, str | None, str | None]:
    name = name.strip()
    if not name:
        raise _invalid("name", "A goal needs a name")
    if kind == "pageview":
        path = (path or "").strip()
        if not path.startswith("/") or any(ch.isspace() for ch in path):
            raise _invalid("path", "A pageview goal needs a path starting with / (use * as a wildcard)")
        return name, path, None
    event_name = (event_name or "").strip()
    if not _EVENT_NAME.match(event_name):
        raise _invalid("event_name", "An event goal needs the event's name (letters, digits, _ . : / -)")
    return name, None, event_name


async def _check_name_free(
    db: AsyncSession, website_id: uuid.UUID, name: str, goal_id: uuid.UUID | None
) -> None:
    query = select(Goal.id).where(Goal.website_id == website_id, Goal.name == name)
    if goal_id is not None:
        query = query.where(Goal.id != goal_id)
    if await db.scalar(query):
        raise Conflict(f"This site already has a goal named {name!r}")


async def create_goal(
    db: AsyncSession, website_id: uuid.UUID, name: str, kind: str, path: str | None, event_name: str | None
) -> Goal:
    name, path, event_name = _validated(name, kind, path, event_name)
    await _check_name_free(db, website_id, name, None)
    goal = Goal(website_id=website_id, name=name, kind=kind, path=path, event_name=event_name)
    db.add(goal)
    await db.flush()
    return goal


async def update_goal(
    db: AsyncSession,
    website_id: uuid.UUID,
    goal_id: uuid.UUID,
    *,
    name: str | None = None,
    path: str | None = None,
    event_name: str | None = None,
) -> Goal:
    """Rename a goal or change what it matches (its kind stays)."""
    goal = await db.scalar(select(Goal).where(Goal.id == goal_id, Goal.website_id == website_id))
    if goal is None:
        raise NotFound("No such goal")
    new_name, new_path, new_event = _validated(
        name if name is not None else goal.name,
        goal.kind,
        path if path is not None else goal.path,
        event_name if event_name is not None else goal.event_name,
    )
    await _check_name_free(db, website_id, new_name, goal.id)
    goal.name, goal.path, goal.event_name = new_name, new_path, new_event
    await db.flush()
    return goal


async def delete_goal(db: AsyncSession, website_id: uuid.UUID, goal_id: uuid.UUID) -> None:
    result = await db.execute(delete(Goal).where(Goal.id == goal_id, Goal.website_id == website_id))
    if not getattr(result, "rowcount", 0):
        raise NotFound("No such goal")

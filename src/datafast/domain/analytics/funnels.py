"""Funnel definitions stored per site (config database); their results come from the query layer."""

from __future__ import annotations

import uuid

import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from datafast.db.models import Funnel
from datafast.domain.analytics.schemas import FunnelCreate, FunnelRead, FunnelStep, FunnelUpdate
from datafast.errors import Conflict, NotFound

__all__ = ("FunnelRepository", "FunnelService", "funnel_read")


def funnel_read(funnel: Funnel) -> FunnelRead:
    return FunnelRead(
        id=str(funnel.id),
        website_id=str(funnel.website_id),
        name=funnel.name,
        steps=msgspec.convert(funnel.steps, list[FunnelStep]),
        window_seconds=funnel.window_seconds,
        created_at=funnel.created_at,
    )


class FunnelRepository(SQLAlchemyAsyncRepository[Funnel]):
    model_type = Funnel


class FunnelService(SQLAlchemyAsyncRepositoryService[Funnel, FunnelRepository]):
    """Never commits: the request scope does (advanced-alchemy's autocommit handler)."""

    repository_type = FunnelRepository

    async def of_site(self, website_id: uuid.UUID) -> list[Funnel]:
        rows = await self.repository.session.execute(
            select(Funnel).where(Funnel.website_id == website_id).order_by(Funnel.created_at, Funnel.name)
        )
        return list(rows.scalars())

    async def get_for_site(self, website_id: uuid.UUID, funnel_id: uuid.UUID) -> Funnel:
        funnel = await self.repository.get_one_or_none(id=funnel_id, website_id=website_id)
        if funnel is None:
            raise NotFound("No such funnel on this site")
        return funnel

    async def _unique_name(
        self, website_id: uuid.UUID, name: str, funnel_id: uuid.UUID | None = None
    ) -> None:
        existing = await self.repository.get_one_or_none(website_id=website_id, name=name)
        if existing is not None and existing.id != funnel_id:
            raise Conflict(f"A funnel named {name!r} already exists on this site")

    async def create_funnel(self, website_id: uuid.UUID, data: FunnelCreate) -> Funnel:
        name = data.name.strip()
        await self._unique_name(website_id, name)
        funnel = Funnel(
            website_id=website_id,
            name=name,
            steps=msgspec.to_builtins(data.steps),
            window_seconds=data.window_seconds,
        )
        try:
            return await self.repository.add(funnel)
        except IntegrityError:  # a concurrent create with the same name
            raise Conflict(f"A funnel named {name!r} already exists on this site") from None

    async def update_funnel(self, website_id: uuid.UUID, funnel_id: uuid.UUID, data: FunnelUpdate) -> Funnel:
        funnel = await self.get_for_site(website_id, funnel_id)
        if data.name is not None:
            await self._unique_name(website_id, data.name.strip(), funnel.id)
            funnel.name = data.name.strip()
        if data.steps is not None:
            funnel.steps = msgspec.to_builtins(data.steps)
        if data.window_seconds is not None:
            funnel.window_seconds = data.window_seconds
        return await self.repository.update(funnel)

    async def delete_funnel(self, website_id: uuid.UUID, funnel_id: uuid.UUID) -> None:
        funnel = await self.get_for_site(website_id, funnel_id)
        await self.repository.delete(funnel.id)

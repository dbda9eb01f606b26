"""Each member's mail preferences per site (the weekly report, opt-in), and the one-click
unsubscribe link the report carries (signed; no sign-in needed)."""

from __future__ import annotations

import uuid
from typing import TypeAlias

import msgspec
from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Membership, User, Website
from datafast.domain.accounts.tokens import signature_matches
from datafast.errors import InvalidInput, NotFound
from datafast.server.auth import requires_session
from datafast.settings import Settings

__all__ = ("NotificationController", "UnsubscribeController")

Db: TypeAlias = NamedDependency[AsyncSession]


class NotificationRead(msgspec.Struct):
    website_id: uuid.UUID
    domain: str
    weekly_report: bool


class NotificationUpdate(msgspec.Struct, forbid_unknown_fields=True):
    weekly_report: bool


class Unsubscribed(msgspec.Struct):
    unsubscribed: bool
    domain: str


class NotificationController(Controller):
    path = "/api/v1/account/notifications"
    tags = ["account"]
    guards = [requires_session]

    @get("/", summary="Your mail preferences for each of your sites")
    async def list_preferences(self, user: NamedDependency[User], db_session: Db) -> list[NotificationRead]:
        rows = await db_session.execute(
            select(Membership.website_id, Website.domain, Membership.weekly_report)
            .join(Website, Website.id == Membership.website_id)
            .where(Membership.user_id == user.id)
            .order_by(Website.domain)
        )
        return [NotificationRead(website_id=w, domain=d, weekly_report=r) for w, d, r in rows]

    @put("/{website_id:uuid}", summary="Turn the weekly email report of one of your sites on or off")
    async def update_preferences(
        self,
        website_id: FromPath[uuid.UUID],
        data: JSONBody[NotificationUpdate],
        user: NamedDependency[User],
        db_session: Db,
    ) -> NotificationRead:
        membership = await db_session.scalar(
            select(Membership).where(Membership.user_id == user.id, Membership.website_id == website_id)
        )
        if membership is None:
            raise NotFound("You are not a member of that site")
        membership.weekly_report = data.weekly_report
        return NotificationRead(
            website_id=website_id, domain=membership.website.domain, weekly_report=data.weekly_report
        )


class UnsubscribeController(Controller):
    path = "/api/v1/notifications/unsubscribe"
    tags = ["account"]

    async def _unsubscribe(self, token: str, db: AsyncSession, settings: Settings) -> Unsubscribed:
        membership_id, _, signature = token.partition(".")
        if (
            not signature.isascii()
            or not signature
            or not signature_matches(settings.secret_key, "unsubscribe-weekly", membership_id, signature)
        ):
            raise InvalidInput("This unsubscribe link is not valid")
        try:
            key = uuid.UUID(membership_id)
        except ValueError:
            raise InvalidInput("This unsubscribe link is not valid") from None
        membership = await db.get(Membership, key)
        if membership is None:
            raise NotFound("You are no longer a member of that site: nothing is sent")
        membership.weekly_report = False
        return Unsubscribed(unsubscribed=True, domain=membership.website.domain)

    @get("/", summary="Stop the weekly report (the link in the mail)")
    async def unsubscribe_link(
        self, token: FromQuery[str], db_session: Db, settings: NamedDependency[Settings]
    ) -> Unsubscribed:
        return await self._unsubscribe(token, db_session, settings)

    @post("/", status_code=HTTP_200_OK, summary="Stop the weekly report (RFC 8058 one-click)")
    async def unsubscribe_one_click(
        self, token: FromQuery[str], db_session: Db, settings: NamedDependency[Settings]
    ) -> Unsubscribed:
        return await self._unsubscribe(token, db_session, settings)

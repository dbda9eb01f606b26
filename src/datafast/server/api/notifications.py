"""Each member's mail preferences per site (weekly and monthly reports, payment and traffic-spike
alerts; all opt-in), the one-click unsubscribe link the reports carry (signed; no sign-in
needed), and a site's alert settings (its spike threshold and chat webhook; admins)."""

from __future__ import annotations

import uuid
from typing import Annotated, TypeAlias

import msgspec
from litestar import Controller, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Membership, Role, User, Website
from datafast.domain.accounts.access import SiteGrant
from datafast.domain.accounts.tokens import signature_matches
from datafast.domain.reports.alerts import check_webhook_url
from datafast.domain.reports.jobs import REPORT_KINDS
from datafast.errors import InvalidInput, NotFound
from datafast.server.auth import requires_session
from datafast.settings import Settings

__all__ = ("NotificationController", "SiteAlertsController", "UnsubscribeController")

Db: TypeAlias = NamedDependency[AsyncSession]


class NotificationRead(msgspec.Struct):
    website_id: uuid.UUID
    domain: str
    weekly_report: bool
    monthly_report: bool
    payment_alerts: bool
    spike_alerts: bool


class NotificationUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the preferences given change."""

    weekly_report: bool | None = None
    monthly_report: bool | None = None
    payment_alerts: bool | None = None
    spike_alerts: bool | None = None


PREFERENCES = ("weekly_report", "monthly_report", "payment_alerts", "spike_alerts")


def _read(membership: Membership) -> NotificationRead:
    return NotificationRead(
        website_id=membership.website_id,
        domain=membership.website.domain,
        **{name: getattr(membership, name) for name in PREFERENCES},
    )


class SiteAlerts(msgspec.Struct):
    alert_webhook_url: str | None
    """A Slack or Discord incoming webhook for payment and spike alerts (None: none)."""
    spike_threshold: int | None
    """Current visitors that make a spike (None: no spike alerts)."""


class SiteAlertsUpdate(msgspec.Struct, forbid_unknown_fields=True):
    alert_webhook_url: str | None = None
    spike_threshold: Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] | None = None


class Unsubscribed(msgspec.Struct):
    unsubscribed: bool
    domain: str


class NotificationController(Controller):
    path = "/api/v1/account/notifications"
    tags = ["account"]
    guards = [requires_session]

    @get("/", summary="Your mail preferences for each of your sites")
    async def list_preferences(self, user: NamedDependency[User], db_session: Db) -> list[NotificationRead]:
        memberships = await db_session.scalars(
            select(Membership)
            .join(Website, Website.id == Membership.website_id)
            .where(Membership.user_id == user.id)
            .order_by(Website.domain)
        )
        return [_read(m) for m in memberships]

    @put("/{website_id:uuid}", summary="Turn reports and alerts of one of your sites on or off")
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
        for name in PREFERENCES:
            value = getattr(data, name)
            if value is not None:
                setattr(membership, name, value)
        return _read(membership)


class SiteAlertsController(Controller):
    """Site-wide alert settings: who gets them is each member's choice (above)."""

    path = "/api/v1/sites/{website_id:uuid}/alerts"
    tags = ["sites"]

    @get("/", summary="The site's spike threshold and chat webhook for alerts")
    async def read_alerts(self, site_grant: NamedDependency[SiteGrant]) -> SiteAlerts:
        website = site_grant.website
        return SiteAlerts(
            alert_webhook_url=website.alert_webhook_url, spike_threshold=website.spike_threshold
        )

    @put(
        "/",
        opt={"site_role": Role.ADMIN},
        summary="Set the site's spike threshold and chat webhook (null: off)",
    )
    async def update_alerts(
        self,
        data: JSONBody[SiteAlertsUpdate],
        site_grant: NamedDependency[SiteGrant],
        db_session: Db,
        settings: NamedDependency[Settings],
    ) -> SiteAlerts:
        website = await db_session.get(Website, site_grant.website.id)
        if website is None:  # pragma: no cover - the guard found it
            raise NotFound("No such site")
        url = data.alert_webhook_url
        website.alert_webhook_url = (
            check_webhook_url(url, settings.accounts.alert_webhook_hosts) if url else None
        )
        if website.spike_threshold != data.spike_threshold:
            website.spike_alerted_at = None
        website.spike_threshold = data.spike_threshold
        return SiteAlerts(
            alert_webhook_url=website.alert_webhook_url, spike_threshold=website.spike_threshold
        )


class UnsubscribeController(Controller):
    path = "/api/v1/notifications/unsubscribe"
    tags = ["account"]

    async def _unsubscribe(self, token: str, kind: str, db: AsyncSession, settings: Settings) -> Unsubscribed:
        if kind not in REPORT_KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(REPORT_KINDS)}")
        membership_id, _, signature = token.partition(".")
        if (
            not signature.isascii()
            or not signature
            or not signature_matches(settings.secret_key, f"unsubscribe-{kind}", membership_id, signature)
        ):
            raise InvalidInput("This unsubscribe link is not valid")
        try:
            key = uuid.UUID(membership_id)
        except ValueError:
            raise InvalidInput("This unsubscribe link is not valid") from None
        membership = await db.get(Membership, key)
        if membership is None:
            raise NotFound("You are no longer a member of that site: nothing is sent")
        setattr(membership, f"{kind}_report", False)
        return Unsubscribed(unsubscribed=True, domain=membership.website.domain)

    @get("/", summary="Stop the weekly or monthly report (the link in the mail)")
    async def unsubscribe_link(
        self,
        token: FromQuery[str],
        db_session: Db,
        settings: NamedDependency[Settings],
        kind: FromQuery[str] = "weekly",
    ) -> Unsubscribed:
        return await self._unsubscribe(token, kind, db_session, settings)

    @post("/", status_code=HTTP_200_OK, summary="Stop the weekly or monthly report (RFC 8058 one-click)")
    async def unsubscribe_one_click(
        self,
        token: FromQuery[str],
        db_session: Db,
        settings: NamedDependency[Settings],
        kind: FromQuery[str] = "weekly",
    ) -> Unsubscribed:
        return await self._unsubscribe(token, kind, db_session, settings)

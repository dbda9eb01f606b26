"""Websites: creation and changes with domain, timezone, currency and hostname validation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from zoneinfo import available_timezones

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Membership, Role, User, Website
from datafast.domain.revenue.trust import CLIENT_REVENUE_MODES, MAX_CLIENT_REVENUE_CAP
from datafast.errors import Conflict, InvalidInput

__all__ = (
    "WebsiteRepository",
    "WebsiteService",
    "install_snippet",
    "normalize_domain",
    "normalize_hostnames",
    "sites_of",
)

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _invalid(key: str, message: str) -> InvalidInput:
    return InvalidInput(message, extra={"errors": [{"key": key, "message": message}]})


def normalize_domain(raw: str) -> str:
    """``https://www.Example.com/path`` → ``www.example.com``; rejects anything not a hostname."""
    value = raw.strip().lower()
    value = re.sub(r"^[a-z][a-z0-9+.-]*://", "", value).split("/", 1)[0].split(":", 1)[0].rstrip(".")
    try:
        value = value.encode("idna").decode("ascii")
    except UnicodeError:
        raise _invalid("domain", f"{raw!r} is not a valid domain") from None
    labels = value.split(".")
    if len(value) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise _invalid("domain", f"{raw!r} is not a valid domain (expected e.g. example.com)")
    return value


def normalize_hostnames(raw: Sequence[str]) -> list[str]:
    """Extra hostnames whose pages count for the site (e.g. a checkout on another domain)."""
    hostnames: list[str] = []
    for value in raw:
        try:
            hostname = normalize_domain(value)
        except InvalidInput:
            raise _invalid("hostnames", f"{value!r} is not a valid hostname") from None
        if hostname not in hostnames:
            hostnames.append(hostname)
    return hostnames


def install_snippet(website: Website, base_url: str) -> str:
    return (
        f'<script defer data-website-id="{website.id}" data-domain="{website.domain}" '
        f'src="{base_url}/js/script.js"></script>'
    )


async def sites_of(
    db: AsyncSession, user_id: uuid.UUID, only: frozenset[uuid.UUID] | None = None
) -> list[tuple[Website, Role]]:
    """The user's sites with their role, oldest first (``only``: an API key's scope)."""
    query = (
        select(Website, Membership.role)
        .join(Membership, Membership.website_id == Website.id)
        .where(Membership.user_id == user_id)
        .order_by(Website.created_at, Website.domain)
    )
    if only is not None:
        query = query.where(Website.id.in_(only))
    return [(website, role) for website, role in (await db.execute(query)).all()]


def validate_timezone(name: str) -> str:
    if name not in available_timezones():
        raise _invalid("timezone", f"{name!r} is not an IANA timezone (e.g. Europe/Paris)")
    return name


def validate_currency(code: str) -> str:
    code = code.strip().upper()
    if not _CURRENCY.match(code):
        raise _invalid("currency", f"{code!r} is not an ISO 4217 currency code (e.g. USD)")
    return code


class WebsiteRepository(SQLAlchemyAsyncRepository[Website]):
    model_type = Website


class WebsiteService(SQLAlchemyAsyncRepositoryService[Website, WebsiteRepository]):
    repository_type = WebsiteRepository

    async def create_site(
        self,
        owner: User,
        domain: str,
        name: str | None = None,
        timezone: str = "UTC",
        currency: str = "USD",
        hostnames: Sequence[str] = (),
    ) -> Website:
        domain = normalize_domain(domain)
        await self._refuse_verified(domain)
        website = Website(
            domain=domain,
            name=(name or domain).strip()[:200],
            timezone=validate_timezone(timezone),
            currency=validate_currency(currency),
            hostnames=normalize_hostnames(hostnames),
        )
        website.memberships.append(Membership(user_id=owner.id, role=Role.OWNER))
        return await self.repository.add(website)

    async def _refuse_verified(self, domain: str) -> None:
        """Only a verified site owns its domain: unverified duplicates are allowed (no squatting)."""
        taken = await self.repository.session.scalar(
            select(Website.id).where(Website.domain == domain, Website.verified_at.is_not(None))
        )
        if taken is not None:
            raise Conflict(f"The site {domain} is already registered and verified by its owner")

    async def update_site(
        self,
        website: Website,
        *,
        domain: str | None = None,
        name: str | None = None,
        timezone: str | None = None,
        currency: str | None = None,
        hostnames: Sequence[str] | None = None,
        count_client_revenue: str | None = None,
        client_revenue_cap: int | None = None,
    ) -> Website:
        if domain is not None:
            domain = normalize_domain(domain)
            if domain != website.domain:
                await self._refuse_verified(domain)
                website.domain = domain
                website.verified_at = None  # the proof was for the old domain
        if name is not None:
            website.name = name.strip()[:200] or website.domain
        if timezone is not None:
            website.timezone = validate_timezone(timezone)
        if currency is not None:
            website.currency = validate_currency(currency)
        if hostnames is not None:
            website.hostnames = normalize_hostnames(hostnames)
        if count_client_revenue is not None:
            if count_client_revenue not in CLIENT_REVENUE_MODES:
                raise _invalid("count_client_revenue", f"one of {', '.join(CLIENT_REVENUE_MODES)}")
            website.count_client_revenue = count_client_revenue
        if client_revenue_cap is not None:
            if not 1 <= client_revenue_cap <= MAX_CLIENT_REVENUE_CAP:
                raise _invalid("client_revenue_cap", f"a whole amount from 1 to {MAX_CLIENT_REVENUE_CAP}")
            website.client_revenue_cap = client_revenue_cap
        await self.repository.session.flush()
        return website

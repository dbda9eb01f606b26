"""Websites: creation with domain, timezone and currency validation; the owner's membership."""

from __future__ import annotations

import re
from zoneinfo import available_timezones

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService

from datafast.db.models import Membership, Role, User, Website
from datafast.errors import Conflict, InvalidInput

__all__ = ("WebsiteRepository", "WebsiteService", "normalize_domain")

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
    ) -> Website:
        domain = normalize_domain(domain)
        if await self.repository.exists(domain=domain):
            raise Conflict(f"The site {domain} is already registered")
        website = Website(
            domain=domain,
            name=(name or domain).strip()[:200],
            timezone=validate_timezone(timezone),
            currency=validate_currency(currency),
        )
        website.memberships.append(Membership(user_id=owner.id, role=Role.OWNER))
        return await self.repository.add(website)

"""Who is asking (a :class:`Principal`) and what they may do with a site (:func:`site_access`).

Rules, enforced here and nowhere else:

- A site the principal cannot see answers **404** (whether or not it exists), so ids cannot be probed.
- A site it can see but not change answers **403**: viewers, read-only API keys and share links
  are read-only; some operations need ``admin`` or ``owner``.
- An API key scoped to some sites sees only those (and only while its user is still a member).
- A share-link principal sees exactly one site, read-only, and only on routes that opt in.
- An API key does only what its scopes allow (``read``, ``write``, ``payments``; see
  :mod:`~datafast.domain.accounts.apikeys`) and never what a route reserves for a signed-in
  session (deleting a site, its team, share links, provider secrets): 403.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Membership, Role, User, Website
from datafast.errors import Forbidden, NotFound

__all__ = ("ROLE_RANK", "Principal", "PrincipalKind", "SiteGrant", "site_access", "site_grant")

PrincipalKind = Literal["session", "api_key", "share"]
ROLE_RANK = {Role.VIEWER: 0, Role.ADMIN: 1, Role.OWNER: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    user: User | None
    """None only for share links."""
    read_only: bool = False
    site_ids: frozenset[uuid.UUID] | None = None
    """None: every site the user is a member of."""
    session_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    share_link_id: uuid.UUID | None = None
    scopes: frozenset[str] | None = None
    """An API key's scopes; None for sessions and share links (their kind decides)."""

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.user.id if self.user is not None else None


@dataclass(frozen=True, slots=True)
class SiteGrant:
    website: Website
    role: Role
    """The principal's role on the site (``viewer`` for share links)."""


def _not_found() -> NotFound:
    return NotFound("No such site")


async def site_grant(
    db: AsyncSession,
    principal: Principal,
    website_id: uuid.UUID | str,
    *,
    write: bool,
    min_role: Role | None = None,
    allow_share: bool = False,
    key_scope: str | None = None,
    session_only: bool = False,
) -> SiteGrant:
    """The principal's access to a site, or 404 (cannot see it) / 403 (cannot do this).

    ``min_role`` defaults to ``viewer`` for reads and ``admin`` for writes. Writes also need
    a read-write credential; an API key needs ``key_scope`` (default ``write`` for writes,
    ``read`` for reads) and is refused where ``session_only``.
    """
    if not isinstance(website_id, uuid.UUID):
        try:
            website_id = uuid.UUID(str(website_id))
        except ValueError:
            raise _not_found() from None
    if principal.site_ids is not None and website_id not in principal.site_ids:
        raise _not_found()
    if principal.kind == "share":
        website = await db.get(Website, website_id) if allow_share else None
        if website is None:
            raise _not_found()
        if write or min_role not in (None, Role.VIEWER):
            raise Forbidden("A shared dashboard is read-only")
        return SiteGrant(website, Role.VIEWER)
    if principal.user is None:
        raise _not_found()
    row = (
        await db.execute(
            select(Website, Membership.role)
            .join(Membership, Membership.website_id == Website.id)
            .where(Website.id == website_id, Membership.user_id == principal.user.id)
        )
    ).first()
    if row is None:
        raise _not_found()
    website, role = row
    needed = min_role if min_role is not None else (Role.ADMIN if write else Role.VIEWER)
    if ROLE_RANK[role] < ROLE_RANK[needed]:
        raise Forbidden(f"This needs the {needed.value} role on the site; you are {role.value}")
    if principal.kind == "api_key":
        if session_only:
            raise Forbidden("API keys cannot do this; sign in to the dashboard")
        needed_scope = key_scope or ("write" if write else "read")
        if principal.scopes is not None and needed_scope not in principal.scopes:
            raise Forbidden(f"This API key lacks the {needed_scope!r} scope")
    if write and principal.read_only:
        raise Forbidden("This API key is read-only")
    return SiteGrant(website, role)


async def site_access(
    db: AsyncSession,
    principal: Principal,
    website_id: uuid.UUID | str,
    *,
    write: bool,
    key_scope: str | None = None,
) -> Website:
    """The site if ``principal`` may read it (``write=False``) or change it (``write=True``).

    Raises :class:`~datafast.errors.NotFound` (404) when the principal cannot see the site and
    :class:`~datafast.errors.Forbidden` (403) when it can see but not change it.
    """
    return (await site_grant(db, principal, website_id, write=write, key_scope=key_scope)).website

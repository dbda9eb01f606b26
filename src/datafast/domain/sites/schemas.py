"""Request and response bodies of the sites, teams, goals and share-link API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from datafast.db.models import Goal, Invitation, Role, ShareLink, Website

__all__ = (
    "GoalCreate",
    "GoalRead",
    "GoalUpdate",
    "InvitationCreate",
    "InvitationRead",
    "MemberRead",
    "MemberUpdate",
    "ShareAccess",
    "ShareLinkCreate",
    "ShareLinkRead",
    "ShareLinkUpdate",
    "SharePasswordBody",
    "SharedSiteRead",
    "SiteCreate",
    "SiteRead",
    "SiteUpdate",
    "Snippet",
    "TransferOwnership",
    "VerificationRead",
)

Hostnames = Annotated[list[Annotated[str, msgspec.Meta(max_length=253)]], msgspec.Meta(max_length=50)]


class SiteCreate(msgspec.Struct, forbid_unknown_fields=True):
    domain: Annotated[str, msgspec.Meta(max_length=300)]
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    timezone: Annotated[str, msgspec.Meta(max_length=64)] = "UTC"
    currency: Annotated[str, msgspec.Meta(max_length=3)] = "USD"
    hostnames: Hostnames = msgspec.field(default_factory=list)


class SiteUpdate(msgspec.Struct, forbid_unknown_fields=True):
    domain: Annotated[str, msgspec.Meta(max_length=300)] | None = None
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    timezone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    currency: Annotated[str, msgspec.Meta(max_length=3)] | None = None
    hostnames: Hostnames | None = None
    count_client_revenue: Literal["auto", "always", "never"] | None = None
    """Whether revenue sent by the tracker (unverified) counts as money: ``auto`` (only while no
    payment provider is connected and no payment was recorded), ``always`` or ``never``."""
    client_revenue_cap: Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)] | None = None
    """The most one tracker revenue event counts for, in whole units of the site's currency."""


class SiteRead(msgspec.Struct):
    id: uuid.UUID
    domain: str
    name: str
    timezone: str
    currency: str
    hostnames: list[str]
    role: Role
    created_at: datetime
    count_client_revenue: str = "auto"
    client_revenue_cap: int = 10_000
    verified: bool = False
    """The owner proved control of the domain (see ``/verification``)."""

    @classmethod
    def of(cls, website: Website, role: Role) -> SiteRead:
        return cls(
            id=website.id,
            domain=website.domain,
            name=website.name,
            timezone=website.timezone,
            currency=website.currency,
            hostnames=list(website.hostnames or []),
            role=role,
            created_at=website.created_at,
            count_client_revenue=website.count_client_revenue,
            client_revenue_cap=website.client_revenue_cap,
            verified=website.verified_at is not None,
        )


class VerificationRead(msgspec.Struct):
    verified: bool
    url: str
    """Where the proof file must be served (HTTPS, no redirect)."""
    token: str
    """The line the file must contain."""


class Snippet(msgspec.Struct):
    html: str
    """Paste into every page's ``<head>``."""


class GoalCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    kind: Literal["pageview", "event"]
    path: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    """For ``pageview`` goals: a path such as ``/thank-you`` or ``/blog/*``."""
    event_name: Annotated[str, msgspec.Meta(max_length=120)] | None = None
    """For ``event`` goals: the custom event's name."""


class GoalUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=120)] | None = None
    path: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    event_name: Annotated[str, msgspec.Meta(max_length=120)] | None = None


class GoalRead(msgspec.Struct):
    id: uuid.UUID
    name: str
    kind: str
    path: str | None
    event_name: str | None
    created_at: datetime

    @classmethod
    def of(cls, goal: Goal) -> GoalRead:
        return cls(goal.id, goal.name, goal.kind, goal.path, goal.event_name, goal.created_at)


class MemberRead(msgspec.Struct):
    user_id: uuid.UUID
    email: str
    name: str | None
    role: Role
    joined_at: datetime


class MemberUpdate(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["admin", "viewer"]


class TransferOwnership(msgspec.Struct, forbid_unknown_fields=True):
    user_id: uuid.UUID
    """A current member, who becomes the owner; the old owner becomes an admin."""


class InvitationCreate(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(max_length=320)]
    role: Literal["admin", "viewer"] = "viewer"


class InvitationRead(msgspec.Struct):
    id: uuid.UUID
    website_id: uuid.UUID
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime
    accepted: bool

    @classmethod
    def of(cls, invitation: Invitation) -> InvitationRead:
        return cls(
            id=invitation.id,
            website_id=invitation.website_id,
            email=invitation.email,
            role=invitation.role,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
            accepted=invitation.accepted_at is not None,
        )


EmbedOrigins = Annotated[list[Annotated[str, msgspec.Meta(max_length=300)]], msgspec.Meta(max_length=50)]
"""Checked and normalised by ``sharing.normalize_embed_origins`` (https origins; http on localhost)."""


class ShareLinkCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=100)] = ""
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)] | None = None
    embed_origins: EmbedOrigins = msgspec.field(default_factory=list)
    """Origins whose pages may show the dashboard in an iframe, e.g. ``["https://blog.example.com"]``."""


class ShareLinkUpdate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=100)] | None = None
    embed_origins: EmbedOrigins | None = None
    """Replaces the list; ``[]``: the link may no longer be embedded anywhere."""


class ShareLinkRead(msgspec.Struct):
    id: uuid.UUID
    slug: str
    name: str
    url: str
    password_protected: bool
    embed_origins: list[str]
    embed_url: str
    """What an embedding page's ``<iframe src>`` loads: the dashboard without the app's header."""
    created_at: datetime

    @classmethod
    def of(cls, link: ShareLink, base_url: str) -> ShareLinkRead:
        url = f"{base_url}/share/{link.slug}"
        return cls(
            id=link.id,
            slug=link.slug,
            name=link.name,
            url=url,
            password_protected=link.password_hash is not None,
            embed_origins=list(link.embed_origins or []),
            embed_url=f"{url}?embed=1",
            created_at=link.created_at,
        )


class SharedSiteRead(msgspec.Struct):
    """What a visitor of a share link sees before opening it."""

    domain: str
    name: str
    password_required: bool


class SharePasswordBody(msgspec.Struct, forbid_unknown_fields=True):
    password: Annotated[str, msgspec.Meta(max_length=1024)] | None = None


class ShareAccess(msgspec.Struct):
    access_token: str
    """Send as ``Authorization: Bearer <token>`` to the site's read-only stats routes."""
    expires_in: int
    website_id: uuid.UUID
    domain: str
    name: str
    timezone: str
    currency: str

"""Config database models (SQLite embedded, PostgreSQL scaled). Alembic migrates them."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from typing import Any

from advanced_alchemy.base import UUIDAuditBase, UUIDBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    JSON,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

__all__ = (
    "Annotation",
    "ApiKey",
    "AuthSession",
    "BillingAccount",
    "BillingEvent",
    "Funnel",
    "Goal",
    "Import",
    "Invitation",
    "Membership",
    "OAuthAccount",
    "PaymentConnection",
    "PrivacyRequest",
    "RecoveryCode",
    "Role",
    "Segment",
    "ShareLink",
    "TokenPurpose",
    "TwoFactor",
    "User",
    "UserToken",
    "VisitorSalt",
    "WebhookDelivery",
    "Website",
    "metadata",
)


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    VIEWER = "viewer"


def _now() -> datetime:
    return datetime.now(UTC)


def _role_enum() -> Enum:
    return Enum(
        Role, name="role", native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
    )


class User(UUIDAuditBase):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True, index=True)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="raise"
    )


class Website(UUIDAuditBase):
    __tablename__ = "websites"
    # A domain belongs to one *verified* site; unverified sites may share it (no squatting).
    __table_args__ = (
        Index(
            "uq_websites_verified_domain",
            "domain",
            unique=True,
            sqlite_where=text("verified_at IS NOT NULL"),
            postgresql_where=text("verified_at IS NOT NULL"),
        ),
    )

    domain: Mapped[str] = mapped_column(String(253), index=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    hostnames: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Extra hostnames whose pages count for this site (besides the domain and its subdomains)."""
    count_client_revenue: Mapped[str] = mapped_column(String(8), default="auto", server_default="auto")
    """Whether revenue sent by the tracker (unverified: anyone can send it) counts as money:
    ``auto`` only while the site has no verified source (no provider connected, no payment
    stored), ``always``, or ``never`` (see :mod:`datafast.domain.revenue.trust`)."""
    client_revenue_cap: Mapped[int] = mapped_column(Integer, default=10_000, server_default="10000")
    """The most one tracker revenue event counts for, in whole units of the site's currency."""
    verified_at: Mapped[datetime | None] = mapped_column(
        DateTimeUTC(timezone=True), default=None, nullable=True
    )
    """When the owner proved control of the domain (``/.well-known/datafast.txt``); None until then."""
    alert_webhook_url: Mapped[str | None] = mapped_column(String(500), default=None, nullable=True)
    """A Slack or Discord incoming webhook that gets the site's payment and spike alerts."""
    spike_threshold: Mapped[int | None] = mapped_column(Integer, default=None, nullable=True)
    """Current visitors (last 5 minutes) that make a traffic spike; None: no spike alerts."""
    spike_alerted_at: Mapped[datetime | None] = mapped_column(
        DateTimeUTC(timezone=True), default=None, nullable=True
    )
    """The last spike alert (at most one per ``SPIKE_QUIET`` hours)."""

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="website", cascade="all, delete-orphan", lazy="raise"
    )


class Membership(UUIDBase):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "website_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    website_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("websites.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(_role_enum())
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    weekly_report: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    """The member opted in to the site's weekly email report."""
    monthly_report: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    """… to the monthly one (the calendar month before, sent on the 1st)."""
    payment_alerts: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    """… to a mail for each new payment."""
    spike_alerts: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    """… to a mail when the site's current visitors reach its ``spike_threshold``."""

    user: Mapped[User] = relationship(back_populates="memberships", lazy="joined", innerjoin=True)
    website: Mapped[Website] = relationship(back_populates="memberships", lazy="joined", innerjoin=True)


class VisitorSalt(UUIDBase):
    """Daily random salts for cookieless visitor ids; deleted after two days so ids cannot be rebuilt."""

    __tablename__ = "visitor_salts"

    day: Mapped[date] = mapped_column(Date, unique=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuthSession(UUIDBase):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "auth_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    user_agent: Mapped[str] = mapped_column(String(400), default="")


class ApiKey(UUIDBase):
    """A bearer key for the API. Shown once; stored as SHA-256 (keys are 256-bit random)."""

    __tablename__ = "api_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    read_only: Mapped[bool] = mapped_column(default=False)
    site_ids: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    """None: every site the user can see; otherwise only these website ids."""
    scopes: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    """What the key may do (``read``, ``write``, ``payments``); None for keys made before scopes:
    ``read`` when ``read_only``, else all three."""
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class TokenPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a purpose, not a password


class UserToken(UUIDBase):
    """Single-use, expiring tokens mailed to a user (email verification, password reset)."""

    __tablename__ = "user_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class OAuthAccount(UUIDBase):
    __tablename__ = "oauth_accounts"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)


class Invitation(UUIDBase):
    """An invitation to join a site's team, accepted with the mailed token."""

    __tablename__ = "invitations"

    website_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("websites.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[Role] = mapped_column(_role_enum())
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class ShareLink(UUIDBase):
    """A public, read-only dashboard of one site, optionally behind a password."""

    __tablename__ = "share_links"

    website_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("websites.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None, index=True
    )
    """Revoked when this user's credentials are reset (the link is a credential they minted)."""
    embed_origins: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Origins (``https://blog.example.com``) whose pages may show the link in an iframe: its page's
    ``frame-ancestors``. Empty: nobody may (``'none'``), as every other page."""
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)


class Goal(UUIDBase):
    """A conversion: a pageview of a path (``*`` wildcards) or a custom event by name."""

    __tablename__ = "goals"
    __table_args__ = (UniqueConstraint("website_id", "name"),)

    website_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("websites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    """``pageview`` (matches ``path``) or ``event`` (matches ``event_name``)."""
    path: Mapped[str | None] = mapped_column(String(500), default=None)
    event_name: Mapped[str | None] = mapped_column(String(120), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)


class Funnel(UUIDBase):
    """Ordered steps (``[{"kind": "page"|"goal", "value": …}]``) a visitor completes within a window."""

    __tablename__ = "funnels"
    __table_args__ = (UniqueConstraint("website_id", "name"),)

    website_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("websites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    steps: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    window_seconds: Mapped[int] = mapped_column(default=86400)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)


class PaymentConnection(UUIDBase):
    """A payment provider connected to a site: where its webhooks land and the secret that signs them."""

    __tablename__ = "payment_connections"
    __table_args__ = (UniqueConstraint("website_id", "provider"),)

    website_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("websites.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    secret_encrypted: Mapped[str] = mapped_column(String(500))
    """The webhook signing secret, Fernet-encrypted with a key derived from SECRET_KEY."""
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    api_key_encrypted: Mapped[str | None] = mapped_column(String(1000), default=None, nullable=True)
    """A read key for the provider's API (history on connect), sealed like the secret."""
    history: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None, nullable=True)
    """The last history import: status, days, progress, counts, error (see revenue.history)."""


class WebhookDelivery(UUIDBase):
    """A webhook delivery already processed: a redelivery with the same id changes nothing."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("connection_id", "delivery_id"),)

    connection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("payment_connections.id", ondelete="CASCADE"), index=True
    )
    delivery_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)


class TwoFactor(UUIDBase):
    """A user's TOTP second factor: pending until confirmed with a code, then required at sign-in."""

    __tablename__ = "two_factor"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    secret_encrypted: Mapped[str] = mapped_column(String(500))
    """The base32 TOTP secret, Fernet-encrypted with a key derived from SECRET_KEY."""
    enabled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    """None while enrolment waits for the first code."""
    last_used_step: Mapped[int | None] = mapped_column(default=None)
    """The 30-second step of the last accepted code: a code of this step or an older one is refused."""
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)


class RecoveryCode(UUIDBase):
    """A single-use recovery code (stands in for a TOTP code); only its SHA-256 is stored."""

    __tablename__ = "recovery_codes"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class Import(UUIDBase):
    """A site's history brought from another tool: the job's state and what it found.

    The uploaded file waits in ``payload`` until the job has read it (a worker in scaled mode
    may run on another machine), then is dropped. ``summary`` lists what was and was not
    importable: ``[{"item": …, "imported": bool, "note": …}]``.
    """

    __tablename__ = "imports"

    website_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("websites.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))
    """``plausible``, ``umami`` or ``ga4``."""
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    """``queued``, ``running``, ``done`` or ``failed``."""
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    """0 to 1."""
    summary: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    first_day: Mapped[date | None] = mapped_column(Date, default=None)
    last_day: Mapped[date | None] = mapped_column(Date, default=None)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    """Daily aggregate rows stored."""
    payload: Mapped[bytes | None] = mapped_column(LargeBinary, default=None, deferred=True)
    requested_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class PrivacyRequest(UUIDBase):
    """The audit trail of per-visitor privacy requests (export or erase) on a site.

    Never the subject's identifiers (visitor id, user id, email or its hash): after an erase no
    table may hold them, this one included. Only who asked, when, how the subject was named and
    how much was found.
    """

    __tablename__ = "privacy_requests"

    website_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("websites.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    """``export`` or ``erase``."""
    matched_by: Mapped[str] = mapped_column(String(16))
    """``visitor_id``, ``user_id`` or ``email``."""
    requested_by: Mapped[str] = mapped_column(String(320))
    """The member's email, an API key's name, or ``cli``."""
    visitors: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    """Rows exported, or rows deleted plus payments unlinked."""
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)


class BillingAccount(UUIDBase):
    """Hosted mode: what a user (the owner of their sites) pays for, mirrored from Stripe.

    ``status``: trialing, active, past_due (grace from ``past_due_since``) or canceled.
    Stripe does not guarantee event order, so each part keeps the ``created`` of the last event
    applied to it and an older one arriving later changes nothing: ``status_event_at`` for the
    status (subscription and invoice events), ``subscription_event_at`` for the plan and period
    (subscription events).
    """

    __tablename__ = "billing_accounts"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    plan: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    trial_ends_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    current_period_start: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    current_period_end: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    past_due_since: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    canceled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    over_allowance_since: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    """When usage in the current period first passed the plan's allowance (None: within it)."""
    usage_notice_level: Mapped[int] = mapped_column(default=0)
    """The usage mail last sent in ``usage_notice_period`` (0, 80 or 100 percent)."""
    usage_notice_period: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    trial_notice_sent: Mapped[bool] = mapped_column(default=False)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True, default=None)
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), default=None)
    subscription_event_at: Mapped[int] = mapped_column(default=0)
    status_event_at: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)


class BillingEvent(UUIDBase):
    """A Stripe billing event already processed (stored with its effect): a redelivery is a no-op."""

    __tablename__ = "billing_events"

    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)


class Segment(UUIDBase):
    """A saved filter set of a site's dashboard, shared with its team.

    ``filters`` holds the Stats API's filters as a ``/query`` body holds them
    (``[{"dimension": "source", "operator": "is", "values": ["Google"]}]``).
    """

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("website_id", "name"),)

    website_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("websites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    filters: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)


class Annotation(UUIDBase):
    """A note on a day of a site's chart ("launched on Product Hunt"); internal to the team."""

    __tablename__ = "annotations"
    __table_args__ = (Index("ix_annotations_website_id_day", "website_id", "day"),)

    website_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("websites.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    """A calendar day in the site's timezone."""
    text: Mapped[str] = mapped_column(String(200))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), default=_now)


metadata = UUIDBase.metadata

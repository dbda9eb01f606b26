"""Config database models (SQLite embedded, PostgreSQL scaled). Alembic migrates them."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime

from advanced_alchemy.base import UUIDAuditBase, UUIDBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, Date, Enum, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

__all__ = ("Membership", "Role", "User", "VisitorSalt", "Website", "metadata")


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    VIEWER = "viewer"


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

    domain: Mapped[str] = mapped_column(String(253), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    hostnames: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Extra hostnames whose pages count for this site (besides the domain and its subdomains)."""

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="website", cascade="all, delete-orphan", lazy="raise"
    )


class Membership(UUIDBase):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "website_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    website_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("websites.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(
        Enum(Role, name="role", native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=lambda: datetime.now(UTC)
    )

    user: Mapped[User] = relationship(back_populates="memberships", lazy="joined", innerjoin=True)
    website: Mapped[Website] = relationship(back_populates="memberships", lazy="joined", innerjoin=True)


class VisitorSalt(UUIDBase):
    """Daily random salts for cookieless visitor ids; deleted after two days so ids cannot be rebuilt."""

    __tablename__ = "visitor_salts"

    day: Mapped[date] = mapped_column(Date, unique=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))


metadata = UUIDBase.metadata

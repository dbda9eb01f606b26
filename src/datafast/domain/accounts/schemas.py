"""Request and response bodies of the accounts API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from datafast.db.models import ApiKey, User
from datafast.domain.accounts.apikeys import key_scopes

__all__ = (
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyRead",
    "Login",
    "PasswordChange",
    "PasswordResetConfirm",
    "PasswordResetRequest",
    "SessionRead",
    "Signup",
    "TokenBody",
    "UserRead",
)

Email = Annotated[str, msgspec.Meta(max_length=320)]
KeyScope = Literal["read", "write", "payments"]
Password = Annotated[str, msgspec.Meta(max_length=1024)]


class Signup(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class Login(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Password


class TokenBody(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(max_length=200)]


class PasswordResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email


class PasswordResetConfirm(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(max_length=200)]
    password: Password


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    new_password: Password
    current_password: Password | None = None
    """Needed when the account has a password (accounts made through OAuth have none yet)."""


class UserRead(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str | None
    email_verified: bool
    is_superuser: bool

    @classmethod
    def of(cls, user: User) -> UserRead:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            email_verified=user.email_verified_at is not None,
            is_superuser=user.is_superuser,
        )


class SessionRead(msgspec.Struct):
    user: UserRead
    csrf_token: str
    """Send it back in ``X-CSRF-Token`` on every POST/PUT/PATCH/DELETE made with the cookie."""


class ApiKeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=100)] = "API key"
    sites: list[uuid.UUID] | None = None
    """Website ids the key may use; omit (or null) for all of the user's sites."""
    read_only: bool = False
    scopes: list[KeyScope] | None = None
    """What the key may do: ``read`` (stats), ``write`` (goals, funnels, settings), ``payments``
    (the Payments API). Omitted: ``read`` for a read-only key, else all three."""


class ApiKeyRead(msgspec.Struct):
    id: uuid.UUID
    name: str
    prefix: str
    sites: list[uuid.UUID] | None
    read_only: bool
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyRead:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            sites=[uuid.UUID(s) for s in key.site_ids] if key.site_ids is not None else None,
            read_only=key.read_only,
            scopes=sorted(key_scopes(key)),
            created_at=key.created_at,
            last_used_at=key.last_used_at,
        )


class ApiKeyCreated(msgspec.Struct):
    key: str
    """The full key: shown this once, never again."""
    api_key: ApiKeyRead

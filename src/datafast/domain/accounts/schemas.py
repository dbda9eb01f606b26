"""Request and response bodies of the accounts API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from datafast.db.models import ApiKey, User
from datafast.domain.accounts.apikeys import key_scopes
from datafast.domain.accounts.twofactor import Enrolment, TwoFactorState

__all__ = (
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyRead",
    "BrowserSession",
    "Login",
    "PasswordChange",
    "PasswordResetConfirm",
    "PasswordResetRequest",
    "SessionRead",
    "Signup",
    "TokenBody",
    "TwoFactorChallenge",
    "TwoFactorCode",
    "TwoFactorEnrolment",
    "TwoFactorLogin",
    "TwoFactorRecoveryCodes",
    "TwoFactorStatus",
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


class BrowserSession(msgspec.Struct):
    """A signed-in browser (never its token)."""

    id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    user_agent: str
    current: bool
    """The session making this request."""


class UserRead(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str | None
    email_verified: bool
    is_superuser: bool
    two_factor_enabled: bool = False
    two_factor_required: bool = False
    """The operator requires two-factor sign-in of this user (an owner) and it is not on yet:
    every request but enrolling it, ``/auth/me`` and signing out answers 403 until it is."""
    billing: bool = False
    """Hosted mode (``BILLING=stripe``): the account has a plan to show (Settings → Billing)."""

    @classmethod
    def of(cls, user: User, two_factor: TwoFactorState | None = None, billing: bool = False) -> UserRead:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            email_verified=user.email_verified_at is not None,
            is_superuser=user.is_superuser,
            two_factor_enabled=two_factor is not None and two_factor.enabled,
            two_factor_required=two_factor is not None and two_factor.required,
            billing=billing,
        )


class LoginProvider(msgspec.Struct):
    """A "Sign in with …" button: shown only for providers configured on this server."""

    name: str
    """``google`` or ``x``."""
    label: str
    start_url: str
    """Where the button sends the browser (it redirects on to the provider)."""


class LoginOptions(msgspec.Struct):
    """How one can sign in here: read by the sign-in and sign-up pages before anyone is signed in."""

    providers: list[LoginProvider]
    signup_open: bool
    """Whether anyone may create an account (otherwise only invited addresses)."""


class TwoFactorChallenge(msgspec.Struct):
    """The answer to a right password when the account has two-factor sign-in: no session yet."""

    challenge: str
    """Send it to ``POST /api/v1/auth/login/two-factor`` with a code (valid 5 minutes)."""
    two_factor_required: bool = True


class TwoFactorLogin(msgspec.Struct, forbid_unknown_fields=True):
    challenge: Annotated[str, msgspec.Meta(max_length=200)]
    code: Annotated[str, msgspec.Meta(max_length=40)]
    """A 6-digit code from the authenticator app, or a recovery code."""


class TwoFactorCode(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(max_length=40)]
    """A 6-digit code from the authenticator app (or, to disable or regenerate, a recovery code)."""


class TwoFactorStatus(msgspec.Struct):
    enabled: bool
    pending: bool
    """Enrolment started and waits for the first code."""
    recovery_codes_left: int
    required: bool
    """The operator requires it of you (you own a site) and it is not on yet."""

    @classmethod
    def of(cls, state: TwoFactorState) -> TwoFactorStatus:
        return cls(
            enabled=state.enabled,
            pending=state.pending,
            recovery_codes_left=state.recovery_codes_left,
            required=state.required,
        )


class TwoFactorEnrolment(msgspec.Struct):
    secret: str
    """Base32, for typing into the authenticator app by hand."""
    otpauth_uri: str
    qr_svg: str
    """The ``otpauth://`` URI as a QR code: an inline SVG element."""

    @classmethod
    def of(cls, enrolment: Enrolment) -> TwoFactorEnrolment:
        return cls(secret=enrolment.secret, otpauth_uri=enrolment.uri, qr_svg=enrolment.qr_svg)


class TwoFactorRecoveryCodes(msgspec.Struct):
    recovery_codes: list[str]
    """Each works once instead of a code from the app. Shown this once: store them safely."""


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

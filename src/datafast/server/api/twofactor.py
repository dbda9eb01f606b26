"""The account's two-factor sign-in over HTTP (session only; the login's second step is in accounts).

The rules (codes, replay, limits, recovery codes) live in :mod:`datafast.domain.accounts.twofactor`.
"""

from __future__ import annotations

from typing import TypeAlias

from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import User
from datafast.domain.accounts import twofactor
from datafast.domain.accounts.access import Principal
from datafast.domain.accounts.schemas import (
    TwoFactorCode,
    TwoFactorEnrolment,
    TwoFactorRecoveryCodes,
    TwoFactorStatus,
)
from datafast.lib.ratelimit import RateLimiter
from datafast.server.auth import TWO_FACTOR_EXEMPT, requires_session
from datafast.settings import Settings

__all__ = ("TwoFactorController",)

Db: TypeAlias = NamedDependency[AsyncSession]


class TwoFactorController(Controller):
    path = "/api/v1/account/two-factor"
    tags = ["account"]
    guards = [requires_session]
    # An owner the operator requires it of must be able to turn it on.
    opt = {TWO_FACTOR_EXEMPT: True}

    @get("/", summary="Whether two-factor sign-in is on, and how many recovery codes are left")
    async def status(
        self, user: NamedDependency[User], db_session: Db, settings: NamedDependency[Settings]
    ) -> TwoFactorStatus:
        return TwoFactorStatus.of(
            await twofactor.state(
                db_session, user.id, required_for_owners=settings.accounts.require_two_factor_for_owners
            )
        )

    @post("/", status_code=200, summary="Start setting up two-factor sign-in (a new secret and its QR code)")
    async def enrol(
        self, user: NamedDependency[User], db_session: Db, settings: NamedDependency[Settings]
    ) -> TwoFactorEnrolment:
        return TwoFactorEnrolment.of(await twofactor.start_enrolment(db_session, settings.secret_key, user))

    @post("/confirm", status_code=200, summary="Turn two-factor sign-in on with a code from the app")
    async def confirm(
        self,
        data: JSONBody[TwoFactorCode],
        principal: NamedDependency[Principal],
        db_session: Db,
        settings: NamedDependency[Settings],
        rate_limiter: NamedDependency[RateLimiter],
    ) -> TwoFactorRecoveryCodes:
        assert principal.user is not None
        codes = await twofactor.confirm_enrolment(
            db_session,
            rate_limiter,
            settings.secret_key,
            principal.user,
            data.code,
            keep_session=principal.session_id,
        )
        return TwoFactorRecoveryCodes(recovery_codes=codes)

    @post("/recovery-codes", status_code=200, summary="Replace the recovery codes (needs a code)")
    async def regenerate(
        self,
        data: JSONBody[TwoFactorCode],
        user: NamedDependency[User],
        db_session: Db,
        settings: NamedDependency[Settings],
        rate_limiter: NamedDependency[RateLimiter],
    ) -> TwoFactorRecoveryCodes:
        codes = await twofactor.regenerate_recovery_codes(
            db_session, rate_limiter, settings.secret_key, user, data.code
        )
        return TwoFactorRecoveryCodes(recovery_codes=codes)

    @delete(
        "/",
        status_code=HTTP_204_NO_CONTENT,
        summary="Turn two-factor sign-in off (needs a code from the app or a recovery code)",
    )
    async def disable(
        self,
        data: JSONBody[TwoFactorCode],
        user: NamedDependency[User],
        db_session: Db,
        settings: NamedDependency[Settings],
        rate_limiter: NamedDependency[RateLimiter],
    ) -> None:
        await twofactor.disable(db_session, rate_limiter, settings.secret_key, user, data.code)

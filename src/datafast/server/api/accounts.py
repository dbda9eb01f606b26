"""Sign-up, login, sessions, email verification, password reset, API keys, the account itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, TypeAlias

import httpx
from litestar import Controller, Request, Response, delete, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response import Redirect
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import TokenPurpose, User
from datafast.domain.accounts import apikeys, twofactor
from datafast.domain.accounts.access import Principal
from datafast.domain.accounts.auth import (
    change_password,
    consume_token,
    issue_token,
    login_with_password,
    reset_password,
)
from datafast.domain.accounts.oauth import authorization_url, fetch_identity, login_with_identity
from datafast.domain.accounts.oauth_state import OAuthState, open_state, seal_state
from datafast.domain.accounts.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    BrowserSession,
    Login,
    LoginOptions,
    LoginProvider,
    PasswordChange,
    PasswordResetConfirm,
    PasswordResetRequest,
    SessionRead,
    Signup,
    TokenBody,
    TwoFactorChallenge,
    TwoFactorLogin,
    UserRead,
)
from datafast.domain.accounts.services import UserService, normalize_email
from datafast.domain.accounts.sessions import (
    create_session,
    list_sessions,
    revoke_all_sessions,
    revoke_session,
    revoke_user_session,
)
from datafast.domain.billing.accounts import account_for
from datafast.domain.sites.changes import announce_site_change
from datafast.domain.sites.data import delete_account
from datafast.domain.sites.teams import has_pending_invitation
from datafast.errors import Forbidden, InvalidInput, NotFound, TooManyRequests
from datafast.lib.clientip import client_ip, rate_limit_subject
from datafast.lib.eventstore import EventStore
from datafast.lib.mail import Mailer, MailError
from datafast.lib.ratelimit import RateLimiter
from datafast.log import get_logger
from datafast.server.auth import (
    TWO_FACTOR_EXEMPT,
    csrf_token,
    login_cookies,
    logout_cookies,
    requires_session,
    same_origin,
    session_cookie_name,
)
from datafast.settings import OAuthProvider, Settings

__all__ = (
    "AccountController",
    "ApiKeyController",
    "AuthController",
    "OAuthController",
    "send_mail_later",
)

Db: TypeAlias = NamedDependency[AsyncSession]

log = get_logger(__name__)


def request_ip(request: Request[Any, Any, Any]) -> str:
    peer = request.client.host if request.client else None
    return client_ip(peer, request.headers.get("x-forwarded-for"), request.app.state.trusted_proxies)


def send_mail_later(mailer: NamedDependency[Mailer], to: str, subject: str, text: str) -> BackgroundTask:
    """Mail after the response (so after the commit: the link in it works when it arrives)."""

    async def send() -> None:
        try:
            await mailer.send(to, subject, text)
        except MailError as exc:
            log.error("mail not sent", to=to, subject=subject, error=str(exc))

    return BackgroundTask(send)


def _verification_mail(
    settings: NamedDependency[Settings],
    mailer: NamedDependency[Mailer],
    user: NamedDependency[User],
    token: str,
) -> BackgroundTask:
    return send_mail_later(
        mailer,
        user.email,
        "Confirm your email for DataFast",
        f"Confirm your email address by opening this link (valid 7 days):\n\n"
        f"{settings.base_url}/verify-email?token={token}\n",
    )


async def _limit_signups(limiter: RateLimiter, settings: Settings, email: str, ip: str) -> None:
    """Per client and per email domain, counted before the (slow) password hash is made.

    Every sign-up hashes a password and mails a link to the address given, so an unthrottled
    form is both a CPU sink and a way to mail strangers.
    """
    hour = 3600
    domain = email.rpartition("@")[2]
    for key, limit in (
        (f"signup:ip:{rate_limit_subject(ip)}", settings.accounts.signup_limit_per_ip),
        (f"signup:domain:{domain}", settings.accounts.signup_limit_per_domain),
    ):
        verdict = await limiter.hit(key, limit, hour)
        if not verdict.allowed:
            raise TooManyRequests(
                f"Too many sign-ups; try again in {verdict.retry_after} seconds", verdict.retry_after
            )


async def _user_read(db: AsyncSession, settings: Settings, user: User) -> UserRead:
    """The user as the API shows it, with whether two-factor sign-in is on (or required and missing)."""
    required = settings.accounts.require_two_factor_for_owners
    state = await twofactor.state(db, user.id, required_for_owners=required)
    return UserRead.of(user, state, billing=settings.billing.mode != "off")


async def _signed_in(
    db: AsyncSession,
    settings: NamedDependency[Settings],
    request: Request[Any, Any, Any],
    user: NamedDependency[User],
    **kwargs: Any,
) -> Response[SessionRead]:
    token = await create_session(db, user, request.headers.get("user-agent", ""))
    return Response(
        SessionRead(user=await _user_read(db, settings, user), csrf_token=csrf_token(settings, token)),
        cookies=login_cookies(settings, token),
        **kwargs,
    )


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]
    guards = [same_origin]

    @post("/signup", status_code=HTTP_201_CREATED, summary="Create an account and sign in")
    async def signup(
        self,
        data: JSONBody[Signup],
        db_session: Db,
        settings: NamedDependency[Settings],
        mailer: NamedDependency[Mailer],
        rate_limiter: NamedDependency[RateLimiter],
        request: Request[Any, Any, Any],
    ) -> Response[SessionRead]:
        if not settings.accounts.signup_open and not await has_pending_invitation(db_session, data.email):
            raise Forbidden("Sign-up is closed on this DataFast; ask its administrator for an account")
        await _limit_signups(rate_limiter, settings, normalize_email(data.email), request_ip(request))
        user = await UserService(session=db_session).create_user(data.email, data.password, data.name)
        if settings.billing.enabled:  # hosted mode: a trial from now, no card
            await account_for(db_session, settings.billing, user)
        token = await issue_token(db_session, user, TokenPurpose.VERIFY_EMAIL)
        return await _signed_in(
            db_session,
            settings,
            request,
            user,
            status_code=HTTP_201_CREATED,
            background=_verification_mail(settings, mailer, user, token),
        )

    @post(
        "/login",
        status_code=200,
        summary="Sign in with email and password",
        description="With two-factor sign-in on, the answer is `{two_factor_required: true, challenge}` "
        "and no session: finish with `POST /api/v1/auth/login/two-factor`.",
    )
    async def login(
        self,
        data: JSONBody[Login],
        db_session: Db,
        settings: NamedDependency[Settings],
        rate_limiter: NamedDependency[RateLimiter],
        request: Request[Any, Any, Any],
    ) -> Response[SessionRead | TwoFactorChallenge]:
        user = await login_with_password(
            db_session, rate_limiter, data.email, data.password, request_ip(request)
        )
        if await twofactor.is_enabled(db_session, user.id):
            return Response(TwoFactorChallenge(challenge=twofactor.challenge(settings.secret_key, user)))
        return await _signed_in(db_session, settings, request, user)  # type: ignore[return-value]

    @post("/login/two-factor", status_code=200, summary="Finish signing in with an app or recovery code")
    async def login_two_factor(
        self,
        data: JSONBody[TwoFactorLogin],
        db_session: Db,
        settings: NamedDependency[Settings],
        rate_limiter: NamedDependency[RateLimiter],
        request: Request[Any, Any, Any],
    ) -> Response[SessionRead]:
        user = await twofactor.complete_sign_in(
            db_session, rate_limiter, settings.secret_key, data.challenge, data.code
        )
        return await _signed_in(db_session, settings, request, user)

    @post(
        "/logout",
        status_code=HTTP_204_NO_CONTENT,
        guards=[requires_session],
        opt={TWO_FACTOR_EXEMPT: True},
        summary="Sign out",
    )
    async def logout(
        self,
        principal: NamedDependency[Principal],
        db_session: Db,
        settings: NamedDependency[Settings],
    ) -> Response[None]:
        assert principal.session_id is not None
        await revoke_session(db_session, principal.session_id)
        return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=logout_cookies(settings))

    @post(
        "/logout-all",
        status_code=HTTP_204_NO_CONTENT,
        guards=[requires_session],
        opt={TWO_FACTOR_EXEMPT: True},
        summary="Sign out of every browser",
    )
    async def logout_all(
        self,
        user: NamedDependency[User],
        db_session: Db,
        settings: NamedDependency[Settings],
    ) -> Response[None]:
        await revoke_all_sessions(db_session, user.id)
        return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=logout_cookies(settings))

    @get(
        "/me",
        guards=[requires_session],
        opt={TWO_FACTOR_EXEMPT: True},
        summary="The signed-in user and the CSRF token",
    )
    async def me(
        self,
        user: NamedDependency[User],
        db_session: Db,
        settings: NamedDependency[Settings],
        request: Request[Any, Any, Any],
    ) -> SessionRead:
        return SessionRead(
            user=await _user_read(db_session, settings, user),
            csrf_token=csrf_token(settings, request.cookies[session_cookie_name(settings)]),
        )

    @post("/verify-email", status_code=200, summary="Confirm an email address with the mailed token")
    async def verify_email(
        self, data: JSONBody[TokenBody], db_session: Db, settings: NamedDependency[Settings]
    ) -> UserRead:
        user = await consume_token(db_session, data.token, TokenPurpose.VERIFY_EMAIL)
        user.email_verified_at = user.email_verified_at or datetime.now(UTC)
        return await _user_read(db_session, settings, user)

    @post(
        "/verify-email/resend",
        status_code=HTTP_202_ACCEPTED,
        guards=[requires_session],
        summary="Mail a new verification link",
    )
    async def resend_verification(
        self,
        user: NamedDependency[User],
        db_session: Db,
        settings: NamedDependency[Settings],
        mailer: NamedDependency[Mailer],
        rate_limiter: NamedDependency[RateLimiter],
    ) -> Response[None]:
        if user.email_verified_at is not None:
            return Response(None, status_code=HTTP_202_ACCEPTED)
        verdict = await rate_limiter.hit(f"verify-mail:{user.id}", 5, 3600)
        if not verdict.allowed:
            raise TooManyRequests(
                f"Too many verification mails; try again in {verdict.retry_after} seconds",
                verdict.retry_after,
            )
        token = await issue_token(db_session, user, TokenPurpose.VERIFY_EMAIL)
        return Response(
            None, status_code=HTTP_202_ACCEPTED, background=_verification_mail(settings, mailer, user, token)
        )

    @post("/password-reset", status_code=HTTP_202_ACCEPTED, summary="Mail a password reset link")
    async def request_password_reset(
        self,
        data: JSONBody[PasswordResetRequest],
        db_session: Db,
        settings: NamedDependency[Settings],
        mailer: NamedDependency[Mailer],
        rate_limiter: NamedDependency[RateLimiter],
        request: Request[Any, Any, Any],
    ) -> Response[None]:
        """Always 202, whether or not the account exists (no enumeration)."""
        email = normalize_email(data.email)
        # Per client and per address: the answer stays 202 either way (no enumeration).
        by_client = await rate_limiter.hit(f"reset:{rate_limit_subject(request_ip(request))}", 10, 3600)
        by_address = await rate_limiter.hit(f"reset:to:{email}", 5, 3600)
        allowed = by_client.allowed and by_address.allowed
        user = await UserService(session=db_session).get_by_email(email) if allowed else None
        if user is None:
            return Response(None, status_code=HTTP_202_ACCEPTED)
        token = await issue_token(db_session, user, TokenPurpose.RESET_PASSWORD)
        mail = send_mail_later(
            mailer,
            user.email,
            "Reset your DataFast password",
            "Someone (hopefully you) asked to reset your DataFast password. Choose a new one here "
            f"(valid 1 hour):\n\n{settings.base_url}/reset-password?token={token}\n\n"
            "If it was not you, ignore this mail.\n",
        )
        return Response(None, status_code=HTTP_202_ACCEPTED, background=mail)

    @post(
        "/password-reset/confirm",
        status_code=HTTP_204_NO_CONTENT,
        summary="Set a new password with the mailed token (signs out everywhere)",
    )
    async def confirm_password_reset(self, data: JSONBody[PasswordResetConfirm], db_session: Db) -> None:
        await reset_password(db_session, data.token, data.password)


OAUTH_COOKIE = "datafast_oauth"
OAUTH_PATH = "/api/v1/auth/oauth"
OAUTH_TTL = 600
OAUTH_LABELS = {"google": "Google", "x": "X"}
OAUTH_STARTS_PER_IP = 30
"""Sign-in starts per client IP in 10 minutes (a person needs a few)."""


def _oauth_provider(settings: Settings, name: str) -> OAuthProvider:
    provider = settings.accounts.oauth_provider(name)
    if provider is None:
        raise NotFound(f"Login with {name!r} is not configured here")
    return provider


def _redirect_uri(settings: Settings, provider: str) -> str:
    return f"{settings.base_url}{OAUTH_PATH}/{provider}/callback"


class OAuthController(Controller):
    path = OAUTH_PATH
    tags = ["auth"]

    @get("/", summary="The sign-in providers configured here (for the login page's buttons)")
    async def providers(self, settings: NamedDependency[Settings]) -> LoginOptions:
        return LoginOptions(
            providers=[
                LoginProvider(p.name, OAUTH_LABELS.get(p.name, p.name), f"{OAUTH_PATH}/{p.name}/start")
                for p in settings.accounts.oauth
            ],
            signup_open=settings.accounts.signup_open,
        )

    @get("/{provider:str}/start", summary="Start signing in with Google or X (redirects there)")
    async def start(
        self,
        provider: FromPath[str],
        settings: NamedDependency[Settings],
        rate_limiter: NamedDependency[RateLimiter],
        request: Request[Any, Any, Any],
    ) -> Redirect:
        config = _oauth_provider(settings, provider)
        verdict = await rate_limiter.hit(f"oauth-start:{request_ip(request)}", OAUTH_STARTS_PER_IP, 600)
        if not verdict.allowed:
            raise TooManyRequests("Too many sign-in attempts; try again later", verdict.retry_after)
        start = authorization_url(config, _redirect_uri(settings, provider))
        # The state travels in a sealed cookie: nothing per start is kept on the server.
        sealed = seal_state(settings.secret_key, OAuthState(start.state, provider, start.verifier))
        response = Redirect(start.url, status_code=302)
        response.set_cookie(
            OAUTH_COOKIE,
            sealed,
            max_age=OAUTH_TTL,
            httponly=True,
            secure=settings.secure_cookies,
            samesite="lax",
            path=OAUTH_PATH,
        )
        return response

    @get("/{provider:str}/callback", summary="Where Google or X send the browser back")
    async def callback(
        self,
        provider: FromPath[str],
        db_session: Db,
        settings: NamedDependency[Settings],
        request: Request[Any, Any, Any],
    ) -> Redirect:
        # Read by hand: ``state`` is a reserved parameter name in Litestar.
        code, state, error = (request.query_params.get(k) for k in ("code", "state", "error"))
        config = _oauth_provider(settings, provider)
        if error:
            raise InvalidInput(f"The {provider} login did not complete: {error[:100]}")
        cookie = request.cookies.get(OAUTH_COOKIE, "")
        if not code or not state or not cookie:
            raise InvalidInput("This login was not started in this browser; start again")
        stored = open_state(settings.secret_key, cookie, provider=provider, state=state, ttl=OAUTH_TTL)
        if stored is None:
            raise InvalidInput("This login expired or was not started in this browser; start again")
        async with httpx.AsyncClient(timeout=15) as http:
            identity = await fetch_identity(
                http, config, code, stored.verifier, _redirect_uri(settings, provider)
            )
        may_sign_up = settings.accounts.signup_open or (
            identity.email is not None and await has_pending_invitation(db_session, identity.email)
        )
        user = await login_with_identity(db_session, identity, signup_open=may_sign_up)
        if await twofactor.is_enabled(db_session, user.id):
            # No session yet: the SPA asks for the code. In the fragment, so it is neither sent to
            # a server nor in a Referer.
            challenge = twofactor.challenge(settings.secret_key, user)
            response = Redirect(f"{settings.base_url}/login#two-factor={challenge}", status_code=302)
        else:
            token = await create_session(db_session, user, request.headers.get("user-agent", ""))
            response = Redirect(f"{settings.base_url}/", status_code=302)
            for cookie_ in login_cookies(settings, token):
                response.set_cookie(cookie_)
        response.delete_cookie(OAUTH_COOKIE, path=OAUTH_PATH)
        return response


class ApiKeyController(Controller):
    path = "/api/v1/api-keys"
    tags = ["api keys"]
    guards = [requires_session]

    @get("/", summary="List your API keys (prefix and last use; never the key)")
    async def list_keys(self, user: NamedDependency[User], db_session: Db) -> list[ApiKeyRead]:
        return [ApiKeyRead.of(k) for k in await apikeys.list_api_keys(db_session, user.id)]

    @post("/", status_code=HTTP_201_CREATED, summary="Create an API key (shown once)")
    async def create_key(
        self,
        data: JSONBody[ApiKeyCreate],
        user: NamedDependency[User],
        db_session: Db,
    ) -> ApiKeyCreated:
        key, record = await apikeys.create_api_key(
            db_session, user, data.name, data.sites, read_only=data.read_only, scopes=data.scopes
        )
        return ApiKeyCreated(key=key, api_key=ApiKeyRead.of(record))

    @delete("/{key_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Revoke an API key")
    async def revoke_key(
        self, key_id: FromPath[uuid.UUID], user: NamedDependency[User], db_session: Db
    ) -> None:
        await apikeys.revoke_api_key(db_session, user.id, key_id)


class AccountController(Controller):
    path = "/api/v1/account"
    tags = ["account"]
    guards = [requires_session]

    @get("/", summary="Your account")
    async def read(
        self, user: NamedDependency[User], db_session: Db, settings: NamedDependency[Settings]
    ) -> UserRead:
        return await _user_read(db_session, settings, user)

    @get("/sessions", summary="Where you are signed in (browsers, newest first)")
    async def signed_in(self, principal: NamedDependency[Principal], db_session: Db) -> list[BrowserSession]:
        assert principal.user is not None
        return [
            BrowserSession(
                id=row.id,
                created_at=row.created_at,
                expires_at=row.expires_at,
                user_agent=row.user_agent,
                current=row.id == principal.session_id,
            )
            for row in await list_sessions(db_session, principal.user.id)
        ]

    @delete("/sessions/{session_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Sign a browser out")
    async def sign_out_browser(
        self, session_id: FromPath[uuid.UUID], principal: NamedDependency[Principal], db_session: Db
    ) -> None:
        assert principal.user is not None
        if session_id == principal.session_id:
            raise InvalidInput("This is the session you are using: sign out instead")
        if not await revoke_user_session(db_session, principal.user.id, session_id):
            raise NotFound("No such session")

    @post(
        "/password",
        status_code=HTTP_204_NO_CONTENT,
        summary="Change your password (other sessions end; this one stays)",
    )
    async def change_password(
        self, data: JSONBody[PasswordChange], principal: NamedDependency[Principal], db_session: Db
    ) -> None:
        assert principal.user is not None
        assert principal.session_id is not None
        await change_password(
            db_session, principal.user, data.current_password, data.new_password, keep=principal.session_id
        )

    @delete(
        "/",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete your account, and the sites you own with all their data",
    )
    async def delete_account(
        self,
        user: NamedDependency[User],
        db_session: Db,
        event_store: NamedDependency[EventStore],
        settings: NamedDependency[Settings],
        request: Request[Any, Any, Any],
    ) -> Response[None]:
        for website_id in await delete_account(db_session, event_store, user):
            ingest = request.app.state.get("ingest")
            if ingest is not None:
                ingest.sites.forget(str(website_id))
            await announce_site_change(request.app.state.adapters.pubsub, website_id)
        return Response(None, status_code=HTTP_204_NO_CONTENT, cookies=logout_cookies(settings))

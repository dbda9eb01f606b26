"""Authentication and site authorisation for every route: the names other modules rely on.

Who is asking
    :func:`authenticate` resolves the request's :class:`~datafast.domain.accounts.access.Principal`
    from, in order, an ``Authorization: Bearer`` header (an API key ``dfk_…`` or a share-link
    access token ``dfs_…``) or the ``datafast_session`` cookie. Cookie-authenticated writes
    (POST/PUT/PATCH/DELETE) must echo the CSRF token in ``X-CSRF-Token`` (the token is in the
    readable ``datafast_csrf`` cookie and in ``/api/v1/auth/me``), else 403.

    The ``principal`` dependency (registered app-wide) gives a handler the Principal or answers
    401 problem details. ``user`` gives the signed-in :class:`~datafast.db.models.User` (session
    or API key). Guards: :func:`requires_session` (cookie only: account settings, API keys),
    :func:`requires_principal`.

    With ``REQUIRE_TWO_FACTOR_FOR_OWNERS=true``, every route that needs a principal answers 403
    (``"two_factor_required": true`` in the problem) to a user — by session or API key — who owns
    a site and has no two-factor sign-in, unless the handler opts out with
    ``opt={TWO_FACTOR_EXEMPT: True}`` (enrolling it, ``/auth/me``, signing out).

Which site
    Any route whose path has a ``{website_id:uuid}`` parameter is checked by
    :func:`site_scope_guard` (an app-level guard, so routes added later are covered without
    doing anything): 401 without credentials, 404 when the principal cannot see the site,
    403 when it can see but not do this. Safe methods (GET/HEAD) need the ``viewer`` role,
    others ``admin`` and a read-write credential. A handler may name the role it needs with
    ``opt={"site_role": Role.OWNER}`` (or ``Role.VIEWER`` for a write any member may do),
    and lets share-link visitors in (read-only) with ``opt={"share": True}``. The handler
    then takes ``website: Website`` (and ``site_grant: SiteGrant`` for the role) as
    dependencies.

    Outside a route, use :func:`datafast.domain.accounts.access.site_access`
    ``(db_session, principal, website_id, *, write) -> Website`` (404/403 as above).

Example (a Stats API route)::

    @get("/api/v1/sites/{website_id:uuid}/stats", opt={"share": True})
    async def stats(website: Website) -> Stats: ...
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any
from urllib.parse import urlsplit

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.di import Provide
from litestar.handlers import BaseRouteHandler
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Role, User, Website
from datafast.domain.accounts.access import Principal, SiteGrant, site_grant
from datafast.domain.accounts.apikeys import KEY_PREFIX, key_scopes, resolve_api_key
from datafast.domain.accounts.sessions import SESSION_TTL, resolve_session
from datafast.domain.accounts.tokens import sign
from datafast.domain.accounts.twofactor import is_missing_required
from datafast.domain.sites.sharing import SHARE_TOKEN_PREFIX, resolve_share_token
from datafast.errors import Forbidden, Unauthorized
from datafast.settings import Settings

__all__ = (
    "AUTH_DEPENDENCIES",
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "TWO_FACTOR_EXEMPT",
    "Principal",
    "SiteGrant",
    "authenticate",
    "csrf_cookie_name",
    "csrf_token",
    "db_session_for",
    "login_cookies",
    "logout_cookies",
    "principal_for_credentials",
    "requires_principal",
    "requires_session",
    "same_origin",
    "session_cookie_name",
    "site_scope_guard",
)

SESSION_COOKIE = "datafast_session"
CSRF_COOKIE = "datafast_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TWO_FACTOR_EXEMPT = "two_factor_exempt"
_UNSET = object()


def db_session_for(connection: ASGIConnection[Any, Any, Any, Any]) -> AsyncSession:
    """The request's config-database session (the same one the ``db_session`` dependency gives)."""
    config: SQLAlchemyAsyncConfig = connection.app.state.db_config
    return config.provide_session(connection.app.state, connection.scope)


def _settings(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    settings: Settings = connection.app.state.settings
    return settings


def csrf_token(settings: Settings, session_token: str) -> str:
    """Derived from the session token, so nothing extra is stored and it changes with each login."""
    return sign(settings.secret_key, "csrf", session_token)[:40]


def session_cookie_name(settings: Settings) -> str:
    """``__Host-datafast_session`` over HTTPS: the browser then only accepts it Secure, for our
    host alone and path ``/``, so a sibling subdomain cannot plant or shadow it. Plain HTTP
    (localhost) cannot carry the prefix."""
    return f"__Host-{SESSION_COOKIE}" if settings.secure_cookies else SESSION_COOKIE


def csrf_cookie_name(settings: Settings) -> str:
    return f"__Host-{CSRF_COOKIE}" if settings.secure_cookies else CSRF_COOKIE


def login_cookies(settings: Settings, session_token: str) -> list[Cookie]:
    max_age = int(SESSION_TTL.total_seconds())
    secure = settings.secure_cookies
    return [
        Cookie(
            key=session_cookie_name(settings),
            value=session_token,
            max_age=max_age,
            httponly=True,
            secure=secure,
            samesite="lax",
            path="/",
        ),
        # Readable by the dashboard's JavaScript, which echoes it in X-CSRF-Token.
        Cookie(
            key=csrf_cookie_name(settings),
            value=csrf_token(settings, session_token),
            max_age=max_age,
            httponly=False,
            secure=secure,
            samesite="lax",
            path="/",
        ),
    ]


def logout_cookies(settings: Settings) -> list[Cookie]:
    return [
        Cookie(
            key=name, value="", max_age=0, expires=0, path="/", secure=settings.secure_cookies, samesite="lax"
        )
        for name in (session_cookie_name(settings), csrf_cookie_name(settings))
    ]


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The request's principal (cached on the connection), None without credentials.

    A bad ``Authorization`` header answers 401; a cookie write without its CSRF token 403.
    """
    cached = connection.state.get("principal", _UNSET)
    if cached is not _UNSET:
        principal: Principal | None = cached
        return principal
    principal = await _authenticate(connection)
    connection.state["principal"] = principal
    return principal


async def _authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    settings = _settings(connection)
    header = connection.headers.get("authorization")
    token = None if header else connection.cookies.get(session_cookie_name(settings))
    if not header and not token:
        return None
    principal = await principal_for_credentials(db_session_for(connection), settings, header, token)
    if principal is not None and token and connection.scope.get("method", "GET") not in SAFE_METHODS:
        sent = connection.headers.get(CSRF_HEADER.lower(), "")
        if not sent or not _equal(sent, csrf_token(settings, token)):
            raise Forbidden(f"Missing or wrong {CSRF_HEADER} header (see the {CSRF_COOKIE} cookie)")
    return principal


async def principal_for_credentials(
    db: AsyncSession, settings: Settings, authorization: str | None, session_token: str | None
) -> Principal | None:
    """The principal an ``Authorization`` header (else a session cookie's token) stands for.

    None for an unknown or expired session; a bad or revoked bearer credential raises 401.
    Long-lived responses (the realtime stream) call this again to notice revocations.
    """
    if authorization:
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise Unauthorized("Use Authorization: Bearer <API key>")
        if credential.startswith(SHARE_TOKEN_PREFIX):
            link = await resolve_share_token(db, settings.secret_key, credential)
            if link is None:
                raise Unauthorized("This share link has expired or was revoked")
            return Principal(
                kind="share",
                user=None,
                read_only=True,
                site_ids=frozenset({link.website_id}),
                share_link_id=link.id,
            )
        if credential.startswith(KEY_PREFIX) and (found := await resolve_api_key(db, credential)):
            key, user = found
            return Principal(
                kind="api_key",
                user=user,
                read_only=key.read_only,
                site_ids=frozenset(uuid.UUID(s) for s in key.site_ids) if key.site_ids is not None else None,
                api_key_id=key.id,
                scopes=key_scopes(key),
            )
        raise Unauthorized("Unknown or revoked API key")
    if not session_token:
        return None
    found_session = await resolve_session(db, session_token)
    if found_session is None:
        return None
    session, user = found_session
    return Principal(kind="session", user=user, session_id=session.id)


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


async def require_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    principal = await authenticate(connection)
    if principal is None:
        raise Unauthorized()
    await _check_two_factor_requirement(connection, principal)
    return principal


async def _check_two_factor_requirement(
    connection: ASGIConnection[Any, Any, Any, Any], principal: Principal
) -> None:
    """403 for an owner without two-factor sign-in when the operator requires it (module docstring)."""
    if principal.user is None or not _settings(connection).accounts.require_two_factor_for_owners:
        return
    handler: BaseRouteHandler = connection.route_handler
    if handler.opt.get(TWO_FACTOR_EXEMPT):
        return
    missing = connection.state.get("two_factor_missing")
    if missing is None:
        missing = await is_missing_required(
            db_session_for(connection), principal.user.id, required_for_owners=True
        )
        connection.state["two_factor_missing"] = missing
    if missing:
        raise Forbidden(
            "This DataFast requires two-factor sign-in of site owners: turn it on in your account "
            "settings first",
            extra={"two_factor_required": True},
        )


async def requires_principal(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: any credential (session, API key; share links only where ``share`` is opted in)."""
    principal = await require_principal(connection)
    if principal.user is None:
        raise Unauthorized("Sign in or send an API key")


async def requires_session(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: a signed-in browser session (account settings and API keys are not for API keys)."""
    principal = await require_principal(connection)
    if principal.kind != "session":
        raise Forbidden("Sign in to the dashboard for this; API keys cannot do it")


async def same_origin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard for sign-up and login forms: a browser posting from another site is refused.

    These writes have no session yet (so no CSRF token); browsers send ``Origin`` on
    cross-site POSTs, which must then be ours. Clients that send no Origin (curl, the API) pass.
    """
    if connection.scope.get("method", "GET") in SAFE_METHODS:
        return
    origin = connection.headers.get("origin")
    if origin is None:
        return
    base = urlsplit(_settings(connection).base_url)
    if origin.rstrip("/").lower() != f"{base.scheme}://{base.netloc}".lower():
        raise Forbidden("Cross-site request refused")


async def site_scope_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """App-level guard: every route with a ``website_id`` path parameter checks site access."""
    website_id = connection.path_params.get("website_id")
    if website_id is None:
        return
    principal = await require_principal(connection)
    role = handler.opt.get("site_role")
    grant = await site_grant(
        db_session_for(connection),
        principal,
        website_id,
        # opt={"read": True}: a POST that only reads (e.g. the Stats API's query body).
        write=connection.scope.get("method", "GET") not in SAFE_METHODS and not handler.opt.get("read"),
        min_role=Role(role) if role is not None else None,
        allow_share=bool(handler.opt.get("share", False)),
        key_scope=handler.opt.get("key_scope"),
        session_only=bool(handler.opt.get("session_only", False)),
    )
    connection.state["site_grant"] = grant


async def _provide_principal(request: Request[Any, Any, Any]) -> Principal:
    return await require_principal(request)


async def _provide_user(request: Request[Any, Any, Any]) -> User:
    principal = await require_principal(request)
    if principal.user is None:
        raise Unauthorized("Sign in or send an API key")
    return principal.user


def _provide_site_grant(request: Request[Any, Any, Any]) -> SiteGrant:
    grant: SiteGrant | None = request.state.get("site_grant")
    if grant is None:  # a route without {website_id} asked for a site: a programming error
        raise RuntimeError("site_grant is only available on routes with a {website_id} path parameter")
    return grant


def _provide_website(request: Request[Any, Any, Any]) -> Website:
    return _provide_site_grant(request).website


AUTH_DEPENDENCIES = {
    "principal": Provide(_provide_principal),
    "user": Provide(_provide_user),
    "site_grant": Provide(_provide_site_grant, sync_to_thread=False),
    "website": Provide(_provide_website, sync_to_thread=False),
}


def with_cookies(response: Response[Any], cookies: list[Cookie]) -> Response[Any]:
    for cookie in cookies:
        response.set_cookie(cookie)
    return response

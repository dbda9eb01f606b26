"""OAuth 2.0 login with Google and X: authorization code flow with PKCE (S256) and a checked state.

The state and the PKCE verifier live in the cache for 10 minutes, single-use; the state is
also set in a cookie so only the browser that started the flow can finish it. A provider
identity is linked to an existing account only through an email the provider says is verified.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import OAuthAccount, User
from datafast.domain.accounts.credentials import revoke_credentials
from datafast.domain.accounts.services import normalize_email
from datafast.errors import Forbidden, InvalidInput, ServiceUnavailable
from datafast.settings import OAuthProvider

__all__ = (
    "OAuthIdentity",
    "OAuthStart",
    "authorization_url",
    "fetch_identity",
    "login_with_identity",
    "pkce_challenge",
)


@dataclass(frozen=True, slots=True)
class OAuthStart:
    url: str
    state: str
    verifier: str


@dataclass(frozen=True, slots=True)
class OAuthIdentity:
    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_url(provider: OAuthProvider, redirect_uri: str) -> OAuthStart:
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(64)  # 86 characters, within RFC 7636's 43..128
    query = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri,
        "scope": provider.scope,
        "state": state,
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
    }
    separator = "&" if "?" in provider.authorize_url else "?"
    return OAuthStart(f"{provider.authorize_url}{separator}{urlencode(query)}", state, verifier)


async def _exchange_code(
    http: httpx.AsyncClient, provider: OAuthProvider, code: str, verifier: str, redirect_uri: str
) -> str:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": provider.client_id,
    }
    headers = {"Accept": "application/json"}
    if provider.name == "x":  # X: confidential clients authenticate with HTTP Basic
        basic = base64.b64encode(f"{provider.client_id}:{provider.client_secret}".encode()).decode()
        headers["Authorization"] = f"Basic {basic}"
    else:
        form["client_secret"] = provider.client_secret
    response = await http.post(provider.token_url, data=form, headers=headers)
    if response.status_code >= 500:
        raise ServiceUnavailable(f"{provider.name} did not answer the login (HTTP {response.status_code})")
    body = _json(response)
    token = body.get("access_token")
    if response.status_code != 200 or not isinstance(token, str):
        raise InvalidInput(f"{provider.name} refused the login: {body.get('error', response.status_code)}")
    return token


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


async def fetch_identity(
    http: httpx.AsyncClient, provider: OAuthProvider, code: str, verifier: str, redirect_uri: str
) -> OAuthIdentity:
    token = await _exchange_code(http, provider, code, verifier, redirect_uri)
    response = await http.get(provider.userinfo_url, headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 200:
        raise ServiceUnavailable(
            f"{provider.name} did not give the account's details ({response.status_code})"
        )
    body = _json(response)
    if provider.name == "x":
        # GET /2/users/me?user.fields=confirmed_email
        # → {"data": {"id", "name", "username", "confirmed_email"}}
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        assert isinstance(data, dict)
        email = data.get("confirmed_email")
        return OAuthIdentity(
            provider="x",
            subject=str(data.get("id") or ""),
            email=email if isinstance(email, str) else None,
            email_verified=isinstance(email, str),  # X only returns a confirmed address
            name=data.get("name") if isinstance(data.get("name"), str) else None,
        )
    # OpenID Connect userinfo: {"sub", "email", "email_verified", "name"}
    email = body.get("email")
    return OAuthIdentity(
        provider=provider.name,
        subject=str(body.get("sub") or ""),
        email=email if isinstance(email, str) else None,
        email_verified=body.get("email_verified") is True,
        name=body.get("name") if isinstance(body.get("name"), str) else None,
    )


async def login_with_identity(db: AsyncSession, identity: OAuthIdentity, *, signup_open: bool) -> User:
    """The user for this identity: already linked, linked now by verified email, or new."""
    if not identity.subject:
        raise InvalidInput(f"{identity.provider} gave no account id")
    linked = await db.scalar(
        select(User)
        .join(OAuthAccount, OAuthAccount.user_id == User.id)
        .where(OAuthAccount.provider == identity.provider, OAuthAccount.subject == identity.subject)
    )
    if linked is not None:
        return linked
    if not identity.email or not identity.email_verified:
        raise InvalidInput(f"Your {identity.provider} account has no verified email address to sign in with")
    email = normalize_email(identity.email)
    user = await db.scalar(select(User).where(User.email == email))
    now = datetime.now(UTC)
    if user is None:
        if not signup_open:
            raise Forbidden("Sign-up is closed on this DataFast; ask its administrator for an account")
        user = User(email=email, name=(identity.name or "")[:200] or None, email_verified_at=now)
        db.add(user)
        await db.flush()
    elif user.email_verified_at is None:
        # Someone registered this address without proving it: the provider just proved who owns
        # it, so that earlier password, its sessions and anything it minted (API keys, share
        # links) must not keep access to the account.
        user.password_hash = None
        user.email_verified_at = now
        await revoke_credentials(db, user.id)
    db.add(OAuthAccount(user_id=user.id, provider=identity.provider, subject=identity.subject, email=email))
    await db.flush()
    return user

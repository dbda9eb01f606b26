"""Proving that a site's owner controls its domain, so nobody can squat a domain.

Anyone may add any domain: a site starts *unverified*, and several unverified sites may name the
same domain (their data is their own — /track resolves sites by id, never by domain). A domain
belongs to at most one *verified* site (a partial unique index). Once a domain is verified, new
sites for it are refused (409), so only the squatter's own, unverified copy remains.

The proof: the site's admin publishes ``https://<domain>/.well-known/datafast.txt`` containing the
site's token (:func:`verification_token`, an HMAC of the site id: nothing to store), then asks us to
check. The fetch is bounded: HTTPS on the domain itself, a 5 s timeout, at most 4 KiB read, no
redirects, and never to a private, loopback or link-local address (``SITE_VERIFICATION_URL`` and
``SITE_VERIFICATION_ALLOW_PRIVATE`` exist for tests). Changing the domain makes the site
unverified again.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Website
from datafast.domain.accounts.tokens import sign
from datafast.errors import Conflict, InvalidInput

__all__ = (
    "DEFAULT_VERIFICATION_URL",
    "MAX_BYTES",
    "TIMEOUT",
    "verification_token",
    "verification_url",
    "verify_site",
)

DEFAULT_VERIFICATION_URL = "https://{domain}/.well-known/datafast.txt"
TIMEOUT = 5.0
MAX_BYTES = 4096


def verification_token(secret_key: str, website: Website) -> str:
    return "datafast-verification=" + sign(secret_key, "site-verification", str(website.id))[:32]


def verification_url(template: str, website: Website) -> str:
    return template.replace("{domain}", website.domain)


async def _public_host(host: str, port: int, allow_private: bool) -> None:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidInput(f"{host} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not allow_private and not address.is_global:
            raise InvalidInput(f"{host} resolves to a private address; it cannot be verified")


async def _fetch(url: str, allow_private: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput("The verification URL is not valid")
    await _public_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), allow_private)
    try:
        async with (
            httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as http,
            http.stream("GET", url, headers={"accept": "text/plain"}) as response,
        ):
            if response.status_code != 200:
                raise InvalidInput(
                    f"{url} answered {response.status_code}, not 200 (redirects are not followed)"
                )
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) >= MAX_BYTES:
                    break
    except httpx.HTTPError as exc:
        raise InvalidInput(f"Could not fetch {url}: {type(exc).__name__}") from None
    return body[:MAX_BYTES].decode("utf-8", errors="replace")


async def verify_site(
    db: AsyncSession, website: Website, *, secret_key: str, url_template: str, allow_private: bool
) -> Website:
    """Check the proof file and mark the site verified; 400 without proof, 409 when another
    site already verified the domain."""
    if website.verified_at is not None:
        return website
    url = verification_url(url_template, website)
    if verification_token(secret_key, website) not in await _fetch(url, allow_private):
        raise InvalidInput(f"{url} does not contain this site's verification token")
    taken = await db.scalar(
        select(Website.id).where(
            Website.domain == website.domain, Website.verified_at.is_not(None), Website.id != website.id
        )
    )
    if taken is not None:
        raise Conflict(f"{website.domain} is already verified by another site")
    website.verified_at = datetime.now(UTC)
    await db.flush()
    return website

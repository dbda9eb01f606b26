"""Share links: a public, read-only dashboard of one site, optionally behind a password.

Opening a link (and giving its password, when it has one) yields a short-lived access token
``dfs_<link id>.<expiry>.<hmac>``. Each use is checked against the database, so revoking
the link (deleting it) ends every token made from it at once.

Embeds: a link lists the origins whose pages may show it in an iframe (its page's CSP
``frame-ancestors``). An origin is ``https://host[:port]`` — or ``http://`` on a loopback host
(``localhost``, ``*.localhost``, ``127.0.0.1``, ``[::1]``) for development — and nothing else: no
path, wildcard, keyword or scheme-only source, so a stored value can never widen the policy
beyond the pages it names (nor inject another directive).
"""

from __future__ import annotations

import ipaddress
import re
import time
import uuid
from collections.abc import Sequence
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import ShareLink, User, Website
from datafast.domain.accounts.services import password_hash_for, password_matches
from datafast.domain.accounts.tokens import new_token, sign, signature_matches
from datafast.errors import Forbidden, InvalidInput, NotFound, Unauthorized

__all__ = (
    "MAX_EMBED_ORIGINS",
    "SHARE_TOKEN_PREFIX",
    "create_share_link",
    "delete_share_link",
    "embed_origins_of",
    "get_share_link",
    "list_share_links",
    "normalize_embed_origins",
    "open_share_link",
    "resolve_share_token",
    "update_share_link",
)

SHARE_TOKEN_PREFIX = "dfs_"  # noqa: S105 - a prefix, not a secret
SHARE_TOKEN_TTL = 12 * 3600
_PURPOSE = "share"
MAX_EMBED_ORIGINS = 20
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _invalid_origin(value: str, why: str) -> InvalidInput:
    message = f"{value!r} is not an allowed embed origin: {why}"
    return InvalidInput(message, extra={"errors": [{"key": "embed_origins", "message": message}]})


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _origin(raw: str) -> str:
    """``https://Blog.Example.com:443/`` → ``https://blog.example.com``; anything else raises."""
    value = raw.strip()
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise _invalid_origin(raw, "not a URL") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("https", "http") or not host or "*" in value or port == 0:
        raise _invalid_origin(raw, "expected https://host[:port] (no wildcards)")
    if parts.username is not None or parts.password is not None:
        raise _invalid_origin(raw, "no user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment or value.endswith(("?", "#")):
        raise _invalid_origin(raw, "an origin has no path, query or fragment")
    if scheme == "http" and not _is_loopback(host):
        raise _invalid_origin(raw, "use https (plain http only on localhost, for development)")
    if ":" in host:  # an IPv6 literal (urlsplit drops its brackets)
        try:
            host = ipaddress.IPv6Address(host).compressed
        except ValueError:
            raise _invalid_origin(raw, "not a valid host") from None
    else:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise _invalid_origin(raw, "not a valid host") from None
        labels = host.rstrip(".").split(".")
        if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
            raise _invalid_origin(raw, "not a valid host")
        host = ".".join(labels)
    default = 443 if scheme == "https" else 80
    netloc = f"[{host}]" if ":" in host else host
    return f"{scheme}://{netloc}" + (f":{port}" if port is not None and port != default else "")


def normalize_embed_origins(raw: Sequence[str]) -> list[str]:
    """The origins a link may be embedded on, normalised and de-duplicated (400 naming the bad one)."""
    origins: list[str] = []
    for value in raw:
        origin = _origin(value)
        if origin not in origins:
            origins.append(origin)
    if len(origins) > MAX_EMBED_ORIGINS:
        raise InvalidInput(
            f"At most {MAX_EMBED_ORIGINS} embed origins per link",
            extra={"errors": [{"key": "embed_origins", "message": f"at most {MAX_EMBED_ORIGINS}"}]},
        )
    return origins


async def create_share_link(
    db: AsyncSession,
    website: Website,
    name: str = "",
    password: str | None = None,
    *,
    created_by: User | None = None,
    embed_origins: Sequence[str] = (),
) -> ShareLink:
    """A new link; ``created_by``'s credential reset revokes it (see accounts/credentials.py)."""
    if created_by is not None and created_by.email_verified_at is None:
        raise Forbidden("Confirm your email address before creating share links (see the mail we sent you)")
    origins = normalize_embed_origins(embed_origins)
    link = ShareLink(
        website_id=website.id,
        slug=new_token()[:32],
        name=name.strip()[:100],
        password_hash=await password_hash_for(password) if password else None,
        created_by_id=created_by.id if created_by is not None else None,
        embed_origins=origins,
    )
    db.add(link)
    await db.flush()
    return link


async def list_share_links(db: AsyncSession, website_id: uuid.UUID) -> Sequence[ShareLink]:
    return (
        await db.scalars(
            select(ShareLink).where(ShareLink.website_id == website_id).order_by(ShareLink.created_at)
        )
    ).all()


async def update_share_link(
    db: AsyncSession,
    website_id: uuid.UUID,
    link_id: uuid.UUID,
    *,
    name: str | None = None,
    embed_origins: Sequence[str] | None = None,
) -> ShareLink:
    """Rename a link or change where it may be embedded (its slug, password and tokens stay)."""
    link = await db.scalar(
        select(ShareLink).where(ShareLink.id == link_id, ShareLink.website_id == website_id)
    )
    if link is None:
        raise NotFound("No such share link")
    if name is not None:
        link.name = name.strip()[:100]
    if embed_origins is not None:
        link.embed_origins = normalize_embed_origins(embed_origins)
    await db.flush()
    return link


async def embed_origins_of(db: AsyncSession, slug: str) -> list[str]:
    """The origins whose pages may frame the share page ``/share/<slug>`` (none for no such link)."""
    origins = await db.scalar(select(ShareLink.embed_origins).where(ShareLink.slug == slug))
    return list(origins or [])


async def delete_share_link(db: AsyncSession, website_id: uuid.UUID, link_id: uuid.UUID) -> None:
    result = await db.execute(
        delete(ShareLink).where(ShareLink.id == link_id, ShareLink.website_id == website_id)
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound("No such share link")


async def get_share_link(db: AsyncSession, slug: str) -> tuple[ShareLink, Website]:
    row = (
        await db.execute(
            select(ShareLink, Website)
            .join(Website, Website.id == ShareLink.website_id)
            .where(ShareLink.slug == slug)
        )
    ).first()
    if row is None:
        raise NotFound("No such shared dashboard")
    link, website = row
    return link, website


async def open_share_link(
    db: AsyncSession, secret_key: str, slug: str, password: str | None
) -> tuple[str, int, Website]:
    """Returns (access token, seconds it lasts, site) or 401 when the password is wrong."""
    link, website = await get_share_link(db, slug)
    if link.password_hash is not None and not await password_matches(link.password_hash, password or ""):
        raise Unauthorized("Wrong password for this shared dashboard")
    expires = int(time.time()) + SHARE_TOKEN_TTL
    value = f"{link.id.hex}.{expires}"
    return f"{SHARE_TOKEN_PREFIX}{value}.{sign(secret_key, _PURPOSE, value)}", SHARE_TOKEN_TTL, website


async def resolve_share_token(db: AsyncSession, secret_key: str, token: str) -> ShareLink | None:
    try:
        link_hex, expires_raw, signature = token.removeprefix(SHARE_TOKEN_PREFIX).split(".")
        link_id, expires = uuid.UUID(hex=link_hex), int(expires_raw)
    except ValueError:
        return None
    if not signature_matches(secret_key, _PURPOSE, f"{link_hex}.{expires_raw}", signature):
        return None
    if expires < time.time():
        return None
    return await db.get(ShareLink, link_id)

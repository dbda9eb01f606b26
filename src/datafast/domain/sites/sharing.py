"""Share links: a public, read-only dashboard of one site, optionally behind a password.

Opening a link (and giving its password, when it has one) yields a short-lived access token
``dfs_<link id>.<expiry>.<hmac>``. Each use is checked against the database, so revoking
the link (deleting it) ends every token made from it at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import ShareLink, User, Website
from datafast.domain.accounts.services import password_hash_for, password_matches
from datafast.domain.accounts.tokens import new_token, sign, signature_matches
from datafast.errors import Forbidden, NotFound, Unauthorized

__all__ = (
    "SHARE_TOKEN_PREFIX",
    "create_share_link",
    "delete_share_link",
    "get_share_link",
    "list_share_links",
    "open_share_link",
    "resolve_share_token",
)

SHARE_TOKEN_PREFIX = "dfs_"  # noqa: S105 - a prefix, not a secret
SHARE_TOKEN_TTL = 12 * 3600
_PURPOSE = "share"


async def create_share_link(
    db: AsyncSession,
    website: Website,
    name: str = "",
    password: str | None = None,
    *,
    created_by: User | None = None,
) -> ShareLink:
    """A new link; ``created_by``'s credential reset revokes it (see accounts/credentials.py)."""
    if created_by is not None and created_by.email_verified_at is None:
        raise Forbidden("Confirm your email address before creating share links (see the mail we sent you)")
    link = ShareLink(
        website_id=website.id,
        slug=new_token()[:32],
        name=name.strip()[:100],
        password_hash=await password_hash_for(password) if password else None,
        created_by_id=created_by.id if created_by is not None else None,
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

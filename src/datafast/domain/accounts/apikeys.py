"""API keys: shown once, stored hashed, scoped to all or some sites, read-only or read-write."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import ApiKey, Membership, User
from datafast.domain.accounts.tokens import hash_token, new_token
from datafast.errors import InvalidInput, NotFound

__all__ = ("KEY_PREFIX", "create_api_key", "list_api_keys", "resolve_api_key", "revoke_api_key")

KEY_PREFIX = "dfk_"
_PREFIX_LENGTH = len(KEY_PREFIX) + 8
_LAST_USED_RESOLUTION = timedelta(minutes=1)  # one write a minute per key, not one per request


async def create_api_key(
    db: AsyncSession,
    user: User,
    name: str,
    site_ids: Sequence[uuid.UUID] | None = None,
    *,
    read_only: bool = False,
) -> tuple[str, ApiKey]:
    """Returns (the key to show once, its stored record). ``site_ids`` None = all the user's sites."""
    name = name.strip()[:100] or "API key"
    scoped: list[str] | None = None
    if site_ids is not None:
        wanted = set(site_ids)
        if not wanted:
            raise InvalidInput(
                "Name at least one site, or none for all sites", extra={"errors": [{"key": "sites"}]}
            )
        mine = set(
            (
                await db.scalars(
                    select(Membership.website_id).where(
                        Membership.user_id == user.id, Membership.website_id.in_(wanted)
                    )
                )
            ).all()
        )
        if missing := wanted - mine:
            # The same answer whether the site does not exist or belongs to someone else.
            raise NotFound(f"No such site: {sorted(map(str, missing))[0]}")
        scoped = sorted(str(s) for s in wanted)
    key = new_token(KEY_PREFIX)
    record = ApiKey(
        user_id=user.id,
        name=name,
        prefix=key[:_PREFIX_LENGTH],
        key_hash=hash_token(key),
        read_only=read_only,
        site_ids=scoped,
    )
    db.add(record)
    await db.flush()
    return key, record


async def resolve_api_key(db: AsyncSession, key: str) -> tuple[ApiKey, User] | None:
    if not key.startswith(KEY_PREFIX):
        return None
    row = (
        await db.execute(
            select(ApiKey, User)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.key_hash == hash_token(key))
        )
    ).first()
    if row is None:
        return None
    record, user = row
    now = datetime.now(UTC)
    if record.last_used_at is None or now - record.last_used_at > _LAST_USED_RESOLUTION:
        record.last_used_at = now
    return record, user


async def list_api_keys(db: AsyncSession, user_id: uuid.UUID) -> Sequence[ApiKey]:
    return (
        await db.scalars(select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at))
    ).all()


async def revoke_api_key(db: AsyncSession, user_id: uuid.UUID, key_id: uuid.UUID) -> None:
    result = await db.execute(delete(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id))
    if not getattr(result, "rowcount", 0):
        raise NotFound("No such API key")

"""API keys: shown once, stored hashed, limited to some sites and to what they may do.

Scopes (what a key may do on the sites it sees):

- ``read``: the Stats API, exports, reports (GET).
- ``payments``: record payments and refunds through the Payments API (a server-side key).
- ``write``: change site configuration — goals, funnels, settings.

Some operations are never done with a key, whatever its scopes: deleting a site, changing its
team or ownership, share links and payment-provider secrets (the dashboard, signed in, does them).
Only users whose email address is verified may create keys: an unverified account may be
someone else's address, and a key must not outlive its owner proving it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import ApiKey, Membership, User
from datafast.domain.accounts.tokens import hash_token, new_token
from datafast.errors import Forbidden, InvalidInput, NotFound

__all__ = (
    "KEY_PREFIX",
    "SCOPES",
    "create_api_key",
    "key_scopes",
    "list_api_keys",
    "resolve_api_key",
    "revoke_api_key",
)

KEY_PREFIX = "dfk_"
_PREFIX_LENGTH = len(KEY_PREFIX) + 8
_LAST_USED_RESOLUTION = timedelta(minutes=1)  # one write a minute per key, not one per request
SCOPES = ("read", "write", "payments")


def key_scopes(key: ApiKey) -> frozenset[str]:
    """What the key may do; keys made before scopes existed keep what ``read_only`` gave them."""
    if key.scopes is not None:
        return frozenset(key.scopes)
    return frozenset({"read"}) if key.read_only else frozenset(SCOPES)


async def create_api_key(
    db: AsyncSession,
    user: User,
    name: str,
    site_ids: Sequence[uuid.UUID] | None = None,
    *,
    read_only: bool = False,
    scopes: Sequence[str] | None = None,
) -> tuple[str, ApiKey]:
    """Returns (the key to show once, its stored record). ``site_ids`` None = all the user's sites.

    ``scopes`` None: ``read`` for a read-only key, else ``read`` + ``write`` + ``payments``.
    """
    if user.email_verified_at is None:
        raise Forbidden("Confirm your email address before creating API keys (see the mail we sent you)")
    if scopes is None:
        scopes = ["read"] if read_only else list(SCOPES)
    chosen = sorted(set(scopes))
    if not chosen or any(s not in SCOPES for s in chosen):
        raise InvalidInput(
            f"Scopes are one or more of {', '.join(SCOPES)}", extra={"errors": [{"key": "scopes"}]}
        )
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
        read_only="write" not in chosen and "payments" not in chosen,
        scopes=chosen,
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

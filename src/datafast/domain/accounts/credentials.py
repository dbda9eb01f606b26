"""Ending every credential a user holds, when the account may have been in someone else's hands.

A password reset by mail, a password change and a sign-in that takes over an account through
OAuth all mean "whoever held this account before may not be its owner". Each of them ends, in
the same transaction: the user's browser sessions (except the one making the change), their API
keys, the share links they created, and any unused mailed links. Open realtime streams re-check
their credential and close once it is gone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import ApiKey, AuthSession, ShareLink, UserToken

__all__ = ("Revoked", "revoke_credentials")


@dataclass(frozen=True, slots=True)
class Revoked:
    sessions: int
    api_keys: int
    share_links: int


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def revoke_credentials(
    db: AsyncSession, user_id: uuid.UUID, *, keep_session: uuid.UUID | None = None
) -> Revoked:
    sessions = delete(AuthSession).where(AuthSession.user_id == user_id)
    if keep_session is not None:
        sessions = sessions.where(AuthSession.id != keep_session)
    ended = _count(await db.execute(sessions))
    keys = _count(await db.execute(delete(ApiKey).where(ApiKey.user_id == user_id)))
    links = _count(await db.execute(delete(ShareLink).where(ShareLink.created_by_id == user_id)))
    await db.execute(delete(UserToken).where(UserToken.user_id == user_id, UserToken.used_at.is_(None)))
    return Revoked(sessions=ended, api_keys=keys, share_links=links)

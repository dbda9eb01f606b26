"""Database sessions: a random token in a cookie, its hash in ``auth_sessions``; 30 days, revocable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import AuthSession, User
from datafast.domain.accounts.tokens import hash_token, new_token

__all__ = ("SESSION_TTL", "create_session", "resolve_session", "revoke_all_sessions", "revoke_session")

SESSION_TTL = timedelta(days=30)


async def create_session(db: AsyncSession, user: User, user_agent: str = "") -> str:
    """Start a session for ``user``; returns the token for the cookie (never stored)."""
    token = new_token()
    db.add(
        AuthSession(
            user_id=user.id,
            token_hash=hash_token(token),
            expires_at=datetime.now(UTC) + SESSION_TTL,
            user_agent=user_agent[:400],
        )
    )
    await db.flush()
    return token


async def resolve_session(db: AsyncSession, token: str) -> tuple[AuthSession, User] | None:
    row = (
        await db.execute(
            select(AuthSession, User)
            .join(User, User.id == AuthSession.user_id)
            .where(AuthSession.token_hash == hash_token(token))
        )
    ).first()
    if row is None:
        return None
    session, user = row
    if session.expires_at <= datetime.now(UTC):
        return None
    return session, user


async def revoke_session(db: AsyncSession, session_id: uuid.UUID) -> None:
    await db.execute(delete(AuthSession).where(AuthSession.id == session_id))


async def revoke_all_sessions(db: AsyncSession, user_id: uuid.UUID) -> int:
    """Log the user out everywhere; returns how many sessions ended."""
    result = await db.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)

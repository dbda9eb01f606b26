"""Database sessions: a random token in a cookie, its hash in ``auth_sessions``; 30 days, revocable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import AuthSession, User
from datafast.domain.accounts.tokens import hash_token, new_token

__all__ = (
    "SESSION_TTL",
    "create_session",
    "list_sessions",
    "resolve_session",
    "revoke_all_sessions",
    "revoke_session",
    "revoke_user_session",
)

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


async def list_sessions(db: AsyncSession, user_id: uuid.UUID) -> list[AuthSession]:
    """The user's signed-in browsers that have not expired, newest first."""
    rows = await db.scalars(
        select(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.expires_at > datetime.now(UTC))
        .order_by(AuthSession.created_at.desc(), AuthSession.id)
    )
    return list(rows)


async def revoke_user_session(db: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    """Sign one of the user's browsers out; False when the user has no such session."""
    result = await db.execute(
        delete(AuthSession).where(AuthSession.id == session_id, AuthSession.user_id == user_id)
    )
    return bool(getattr(result, "rowcount", 0))

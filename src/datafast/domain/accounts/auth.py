"""Password login with its rate limit, and the mailed single-use tokens (verification, reset).

Login failures are counted per account and per client IP: after 5 failures in 15 minutes the
next attempt answers 429 with Retry-After, without checking the password. Wrong email and wrong
password get the same message and take the same time (a dummy argon2 hash is checked when the
account does not exist).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import TokenPurpose, User, UserToken
from datafast.domain.accounts.services import (
    hash_password,
    normalize_email,
    validate_password,
    verify_password,
)
from datafast.domain.accounts.sessions import revoke_all_sessions
from datafast.domain.accounts.tokens import hash_token, new_token
from datafast.errors import Gone, InvalidInput, TooManyRequests, Unauthorized
from datafast.lib.ratelimit import RateLimiter

__all__ = (
    "LOGIN_LIMIT",
    "LOGIN_WINDOW",
    "TOKEN_TTL",
    "consume_token",
    "issue_token",
    "login_with_password",
    "reset_password",
)

LOGIN_LIMIT = 5
LOGIN_WINDOW = 15 * 60
TOKEN_TTL = {
    TokenPurpose.VERIFY_EMAIL: timedelta(days=7),
    TokenPurpose.RESET_PASSWORD: timedelta(hours=1),
}
WRONG_CREDENTIALS = "Wrong email or password"


@cache
def _dummy_hash() -> str:
    return hash_password("not a real password 0")


def _login_keys(email: str, ip: str) -> tuple[str, str]:
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"login:account:{account}", f"login:ip:{ip}"


async def login_with_password(
    db: AsyncSession, limiter: RateLimiter, email: str, password: str, ip: str
) -> User:
    keys = _login_keys(email, ip)
    for key in keys:
        verdict = await limiter.peek(key, LOGIN_LIMIT, LOGIN_WINDOW)
        if not verdict.allowed:
            raise TooManyRequests(
                f"Too many failed logins; try again in {verdict.retry_after} seconds", verdict.retry_after
            )
    try:
        normalized = normalize_email(email)
    except InvalidInput:
        normalized = None
    user = await db.scalar(select(User).where(User.email == normalized)) if normalized is not None else None
    stored = user.password_hash if user is not None else None
    matches = verify_password(stored or _dummy_hash(), password)
    if user is None or stored is None or not matches:
        for key in keys:
            await limiter.hit(key, LOGIN_LIMIT, LOGIN_WINDOW)
        raise Unauthorized(WRONG_CREDENTIALS)
    await limiter.reset(keys[0])
    return user


async def issue_token(db: AsyncSession, user: User, purpose: TokenPurpose) -> str:
    token = new_token()
    db.add(
        UserToken(
            user_id=user.id,
            purpose=purpose.value,
            token_hash=hash_token(token),
            expires_at=datetime.now(UTC) + TOKEN_TTL[purpose],
        )
    )
    await db.flush()
    return token


async def consume_token(db: AsyncSession, token: str, purpose: TokenPurpose) -> User:
    """The token's user, marking the token used; 410 when it is unknown, used or expired."""
    now = datetime.now(UTC)
    # One UPDATE decides, so two concurrent uses cannot both succeed.
    result = await db.execute(
        update(UserToken)
        .where(
            UserToken.token_hash == hash_token(token),
            UserToken.purpose == purpose.value,
            UserToken.used_at.is_(None),
            UserToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(UserToken.user_id)
    )
    user_id = result.scalar_one_or_none()
    user = await db.get(User, user_id) if user_id is not None else None
    if user is None:
        raise Gone("This link is invalid, expired or already used")
    return user


async def reset_password(db: AsyncSession, token: str, password: str) -> User:
    validate_password(password)
    user = await consume_token(db, token, TokenPurpose.RESET_PASSWORD)
    user.password_hash = hash_password(password)
    if user.email_verified_at is None:
        user.email_verified_at = datetime.now(UTC)  # the mail reached them
    await revoke_all_sessions(db, user.id)
    return user

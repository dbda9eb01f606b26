"""Password login with its rate limits, and the mailed single-use tokens (verification, reset).

Login attempts are counted *before* the password is checked (an atomic increment), and a
successful attempt gives its count back; so N concurrent guesses cannot all pass a check made
before any of them failed. Three windows of 15 minutes, each answering 429 with Retry-After
without checking the password once full:

- one account from one client (IPv4 address or IPv6 /64): 5 failures — the designed limit;
- one client across all accounts: 30 failures (password spraying);
- one account from everywhere: 100 failures (a botnet), high enough that locking someone out
  takes many networks, where a plain per-account limit let anyone lock any account with 5 guesses.

Wrong email and wrong password get the same message and take the same time (a dummy argon2 hash
is checked when the account does not exist). Only the newest mailed link of each kind works:
issuing one voids the earlier ones.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import TokenPurpose, User, UserToken
from datafast.domain.accounts.credentials import revoke_credentials
from datafast.domain.accounts.services import (
    hash_password,
    normalize_email,
    password_hash_for,
    password_matches,
    validate_password,
)
from datafast.domain.accounts.tokens import hash_token, new_token
from datafast.errors import Gone, InvalidInput, TooManyRequests, Unauthorized
from datafast.lib.clientip import rate_limit_subject
from datafast.lib.ratelimit import RateLimiter

__all__ = (
    "LOGIN_LIMIT",
    "LOGIN_WINDOW",
    "TOKEN_TTL",
    "change_password",
    "consume_token",
    "issue_token",
    "login_with_password",
    "reset_password",
)

LOGIN_LIMIT = 5
LOGIN_LIMIT_PER_CLIENT = 30
LOGIN_LIMIT_PER_ACCOUNT = 100
LOGIN_WINDOW = 15 * 60
TOKEN_TTL = {
    TokenPurpose.VERIFY_EMAIL: timedelta(days=7),
    TokenPurpose.RESET_PASSWORD: timedelta(hours=1),
}
WRONG_CREDENTIALS = "Wrong email or password"


@cache
def _dummy_hash() -> str:
    return hash_password("not a real password 0")


def _login_limits(email: str, ip: str) -> tuple[tuple[str, int], ...]:
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    client = rate_limit_subject(ip)
    return (
        (f"login:pair:{account}:{client}", LOGIN_LIMIT),
        (f"login:ip:{client}", LOGIN_LIMIT_PER_CLIENT),
        (f"login:account:{account}", LOGIN_LIMIT_PER_ACCOUNT),
    )


async def login_with_password(
    db: AsyncSession, limiter: RateLimiter, email: str, password: str, ip: str
) -> User:
    limits = _login_limits(email, ip)
    verdicts = [await limiter.hit(key, limit, LOGIN_WINDOW) for key, limit in limits]
    if refused := [v for v in verdicts if not v.allowed]:
        wait = max(v.retry_after for v in refused)
        raise TooManyRequests(f"Too many failed logins; try again in {wait} seconds", wait)
    try:
        normalized = normalize_email(email)
    except InvalidInput:
        normalized = None
    found = (
        (await db.execute(select(User.id, User.password_hash).where(User.email == normalized))).first()
        if normalized is not None
        else None
    )
    # End the read before the (queued, slow) hash: a burst of logins must not hold database
    # connections while they wait for the hashing pool.
    await db.rollback()
    stored = found.password_hash if found is not None else None
    matches = await password_matches(stored or _dummy_hash(), password)
    user = await db.get(User, found.id) if found is not None and stored is not None and matches else None
    if user is None:
        raise Unauthorized(WRONG_CREDENTIALS)
    for key, _ in limits:  # a success is not a failure: give its counts back
        await limiter.release(key)
    return user


async def issue_token(db: AsyncSession, user: User, purpose: TokenPurpose) -> str:
    """A new mailed token; earlier unused ones of the same purpose stop working."""
    now = datetime.now(UTC)
    await db.execute(
        update(UserToken)
        .where(UserToken.user_id == user.id, UserToken.purpose == purpose.value, UserToken.used_at.is_(None))
        .values(used_at=now)
    )
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
    user.password_hash = await password_hash_for(password)
    if user.email_verified_at is None:
        user.email_verified_at = datetime.now(UTC)  # the mail reached them
    # Whoever held the account before the mailbox owner did may have minted keys or links.
    await revoke_credentials(db, user.id)
    return user


async def change_password(
    db: AsyncSession, user: User, current: str | None, new: str, *, keep: uuid.UUID | None = None
) -> None:
    """Set a new password; every other credential of the user ends (``keep`` stays signed in)."""
    if user.password_hash is not None and not await password_matches(user.password_hash, current or ""):
        raise InvalidInput("The current password is wrong", extra={"errors": [{"key": "current_password"}]})
    validate_password(new)
    user.password_hash = await password_hash_for(new)
    await revoke_credentials(db, user.id, keep_session=keep)

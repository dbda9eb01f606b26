"""Users: creation with argon2id password hashes, lookup by email.

Password hashing is slow on purpose (~0.3 s of CPU). Request handlers use
:func:`password_hash_for` and :func:`password_matches`, which run argon2 in a small thread pool
(half the cores, at least one): a burst of sign-ups or logins queues there instead of blocking
the event loop, so ``/track`` and health checks keep answering on the other cores. argon2 releases
the GIL while it hashes. The synchronous functions are for the CLI and start-up only.
"""

from __future__ import annotations

import asyncio
import os
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from datafast.db.models import User
from datafast.errors import Conflict, InvalidInput

__all__ = (
    "UserRepository",
    "UserService",
    "hash_password",
    "normalize_email",
    "password_hash_for",
    "password_matches",
    "verify_password",
)

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
# argon2id with the library's memory and time cost, on one lane: the default of 4 lanes runs 4
# threads per hash, so one sign-up would take every core from the event loop. Hashes made with
# other parameters still verify (each hash carries its own).
_hasher = PasswordHasher(parallelism=1)


def normalize_email(raw: str) -> str:
    email = raw.strip().lower()
    if len(email) > 320 or not _EMAIL.match(email):
        raise InvalidInput(f"{raw!r} is not an email address", extra={"errors": [{"key": "email"}]})
    return email


def validate_password(password: str) -> None:
    if len(password) < 8 or not any(ch.isdigit() for ch in password):
        raise InvalidInput(
            "The password needs at least 8 characters, one of them a number",
            extra={"errors": [{"key": "password"}]},
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _hashing_pool() -> ThreadPoolExecutor:
    # Bounded on purpose: more threads than this would take the cores the event loop needs.
    return ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) // 2), thread_name_prefix="argon2")


async def password_hash_for(password: str) -> str:
    """:func:`hash_password` off the event loop, in the bounded hashing pool."""
    return await asyncio.get_running_loop().run_in_executor(_hashing_pool(), hash_password, password)


async def password_matches(password_hash: str, password: str) -> bool:
    """:func:`verify_password` off the event loop, in the bounded hashing pool."""
    return await asyncio.get_running_loop().run_in_executor(
        _hashing_pool(), verify_password, password_hash, password
    )


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User


class UserService(SQLAlchemyAsyncRepositoryService[User, UserRepository]):
    repository_type = UserRepository

    async def get_by_email(self, email: str) -> User | None:
        return await self.repository.get_one_or_none(email=normalize_email(email))

    async def mark_verified(self, email: str) -> User | None:
        """Confirm a user's address without the mailed link (``datafast user verify``)."""
        user = await self.get_by_email(email)
        if user is not None and user.email_verified_at is None:
            user.email_verified_at = datetime.now(UTC)
        return user

    async def create_user(
        self,
        email: str,
        password: str,
        name: str | None = None,
        *,
        superuser: bool = False,
        verified: bool = False,
    ) -> User:
        email = normalize_email(email)
        validate_password(password)
        # Hash before the first query: a request queued for the hashing pool must not hold a
        # database connection meanwhile (a burst of sign-ups would drain the pool /track needs).
        password_hash = await password_hash_for(password)
        if await self.repository.exists(email=email):
            raise Conflict(f"A user with the email {email} already exists")
        user = User(
            email=email,
            name=name,
            password_hash=password_hash,
            is_superuser=superuser,
            # A user made by the operator (CLI) is vouched for; a sign-up proves its address by mail.
            email_verified_at=datetime.now(UTC) if verified else None,
        )
        return await self.repository.add(user)

"""Users: creation with argon2id password hashes, lookup by email."""

from __future__ import annotations

import re

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from datafast.db.models import User
from datafast.errors import Conflict, InvalidInput

__all__ = ("UserRepository", "UserService", "hash_password", "normalize_email", "verify_password")

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


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


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User


class UserService(SQLAlchemyAsyncRepositoryService[User, UserRepository]):
    repository_type = UserRepository

    async def get_by_email(self, email: str) -> User | None:
        return await self.repository.get_one_or_none(email=normalize_email(email))

    async def create_user(
        self, email: str, password: str, name: str | None = None, *, superuser: bool = False
    ) -> User:
        email = normalize_email(email)
        validate_password(password)
        if await self.repository.exists(email=email):
            raise Conflict(f"A user with the email {email} already exists")
        user = User(email=email, name=name, password_hash=hash_password(password), is_superuser=superuser)
        return await self.repository.add(user)

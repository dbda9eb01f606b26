"""Users and sites on both config databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Membership, Role, Website
from datafast.domain.accounts.services import UserService, verify_password
from datafast.domain.sites.services import WebsiteService, normalize_domain
from datafast.errors import Conflict, InvalidInput


@pytest.fixture
def session(db_session: AsyncSession) -> AsyncSession:
    return db_session


def unique_email() -> str:
    return f"u{uuid.uuid4().hex[:8]}@Example.COM"


async def test_user_is_stored_with_a_normalised_email_and_argon2id_hash(session: AsyncSession) -> None:
    email = unique_email()
    user = await UserService(session=session).create_user(email, "correct horse 1", "Ada")

    assert user.email == email.lower()
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, "correct horse 1")
    assert not verify_password(user.password_hash, "correct horse 2")
    assert await UserService(session=session).get_by_email(email.upper()) == user


async def test_duplicate_email_conflicts(session: AsyncSession) -> None:
    email = unique_email()
    await UserService(session=session).create_user(email, "password1")

    with pytest.raises(Conflict):
        await UserService(session=session).create_user(email.upper(), "password2")


@pytest.mark.parametrize(("email", "password"), [("not-an-email", "password1"), ("a@b.co", "nodigits")])
async def test_bad_user_input_is_refused(session: AsyncSession, email: str, password: str) -> None:
    with pytest.raises(InvalidInput):
        await UserService(session=session).create_user(email, password)


async def test_site_gets_its_owner_membership(session: AsyncSession) -> None:
    owner = await UserService(session=session).create_user(unique_email(), "password1")
    domain = f"{uuid.uuid4().hex[:8]}.example.org"
    site = await WebsiteService(session=session).create_site(
        owner, f"https://{domain}/", "Shop", "Asia/Tokyo", "jpy"
    )
    await session.flush()

    stored = await session.scalar(select(Website).where(Website.domain == domain))
    assert stored is not None
    assert (stored.name, stored.timezone, stored.currency) == ("Shop", "Asia/Tokyo", "JPY")
    assert isinstance(stored.id, uuid.UUID)
    membership = await session.scalar(select(Membership).where(Membership.website_id == site.id))
    assert membership is not None
    assert (membership.user_id, membership.role) == (owner.id, Role.OWNER)

    # An unverified domain can be added again (nobody squats it); a verified one cannot.
    duplicate = await WebsiteService(session=session).create_site(owner, domain.upper())
    assert duplicate.id != site.id
    site.verified_at = datetime.now(UTC)
    await session.flush()
    with pytest.raises(Conflict):
        await WebsiteService(session=session).create_site(owner, domain.upper())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.com", "example.com"),
        ("https://www.example.com/pricing?x=1", "www.example.com"),
        ("shop.example.co.uk:8443", "shop.example.co.uk"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_domains_are_normalised(raw: str, expected: str) -> None:
    assert normalize_domain(raw) == expected


@pytest.mark.parametrize("raw", ["localhost", "", "exa mple.com", "-bad.com", "a..com", "x" * 64 + ".com"])
def test_bad_domains_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_domain(raw)

"""Teams: members of a site with a role (owner, admin, viewer), invitations, ownership transfer.

Each site has exactly one owner. Admins manage settings, goals, share links and non-owner
members; only the owner deletes the site or hands it over. Invitations are mailed tokens,
single-use, valid 7 days, for one email address.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Invitation, Membership, Role, User, Website
from datafast.domain.accounts.services import normalize_email
from datafast.domain.accounts.tokens import hash_token, new_token
from datafast.domain.sites.schemas import MemberRead
from datafast.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound

__all__ = (
    "INVITATION_TTL",
    "accept_invitation",
    "has_pending_invitation",
    "invite",
    "leave",
    "list_invitations",
    "list_members",
    "remove_member",
    "revoke_invitation",
    "set_role",
    "transfer_ownership",
)

INVITATION_TTL = timedelta(days=7)


async def list_members(db: AsyncSession, website_id: uuid.UUID) -> list[MemberRead]:
    rows = await db.execute(
        select(User.id, User.email, User.name, Membership.role, Membership.created_at)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.website_id == website_id)
        .order_by(Membership.created_at)
    )
    return [MemberRead(row.id, row.email, row.name, row.role, row.created_at) for row in rows]


async def _membership(db: AsyncSession, website_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
    return await db.scalar(
        select(Membership).where(Membership.website_id == website_id, Membership.user_id == user_id)
    )


async def invite(
    db: AsyncSession, website: Website, inviter: User | None, email: str, role: Role
) -> tuple[str, Invitation]:
    email = normalize_email(email)
    if inviter is not None and inviter.email_verified_at is None:
        # Invitations send mail to any address: only from accounts that proved their own.
        raise Forbidden("Confirm your email address before inviting people (see the mail we sent you)")
    if role == Role.OWNER:
        raise Forbidden("Invite as admin or viewer, then transfer ownership")
    member = await db.scalar(
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.website_id == website.id, User.email == email)
    )
    if member is not None:
        raise Conflict(f"{email} is already a member of this site")
    token = new_token()
    invitation = Invitation(
        website_id=website.id,
        email=email,
        role=role,
        token_hash=hash_token(token),
        invited_by_id=inviter.id if inviter else None,
        expires_at=datetime.now(UTC) + INVITATION_TTL,
    )
    db.add(invitation)
    await db.flush()
    return token, invitation


async def has_pending_invitation(db: AsyncSession, email: str) -> bool:
    """Invited people may sign up even when public sign-up is closed."""
    try:
        email = normalize_email(email)
    except InvalidInput:
        return False
    found = await db.scalar(
        select(Invitation.id)
        .where(
            Invitation.email == email,
            Invitation.accepted_at.is_(None),
            Invitation.expires_at > datetime.now(UTC),
        )
        .limit(1)
    )
    return found is not None


async def list_invitations(db: AsyncSession, website_id: uuid.UUID) -> Sequence[Invitation]:
    return (
        await db.scalars(
            select(Invitation)
            .where(Invitation.website_id == website_id, Invitation.accepted_at.is_(None))
            .order_by(Invitation.created_at)
        )
    ).all()


async def revoke_invitation(db: AsyncSession, website_id: uuid.UUID, invitation_id: uuid.UUID) -> None:
    result = await db.execute(
        delete(Invitation).where(Invitation.id == invitation_id, Invitation.website_id == website_id)
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound("No such invitation")


async def accept_invitation(db: AsyncSession, user: User, token: str) -> tuple[Website, Role]:
    invitation = await db.scalar(select(Invitation).where(Invitation.token_hash == hash_token(token)))
    now = datetime.now(UTC)
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at <= now:
        raise Gone("This invitation is invalid, expired or already used")
    if invitation.email != user.email:
        raise Forbidden(f"This invitation was sent to another email address than {user.email}")
    invitation.accepted_at = now
    website = await db.get(Website, invitation.website_id)
    if website is None:
        raise Gone("The site of this invitation was deleted")
    membership = await _membership(db, website.id, user.id)
    if membership is None:
        db.add(Membership(user_id=user.id, website_id=website.id, role=invitation.role))
        role = invitation.role
    else:
        role = membership.role  # already a member: an invitation never lowers or raises a role
    await db.flush()
    return website, role


async def _target(db: AsyncSession, website_id: uuid.UUID, user_id: uuid.UUID) -> Membership:
    membership = await _membership(db, website_id, user_id)
    if membership is None:
        raise NotFound("No such member")
    return membership


async def set_role(db: AsyncSession, website_id: uuid.UUID, user_id: uuid.UUID, role: Role) -> Membership:
    membership = await _target(db, website_id, user_id)
    if membership.role == Role.OWNER or role == Role.OWNER:
        raise Conflict("The owner's role changes only by transferring ownership")
    membership.role = role
    await db.flush()
    return membership


async def remove_member(db: AsyncSession, website_id: uuid.UUID, user_id: uuid.UUID) -> None:
    membership = await _target(db, website_id, user_id)
    if membership.role == Role.OWNER:
        raise Conflict("The owner cannot be removed; transfer ownership first")
    await db.delete(membership)
    await db.flush()


async def transfer_ownership(
    db: AsyncSession, website_id: uuid.UUID, owner_id: uuid.UUID, new_owner_id: uuid.UUID
) -> None:
    if new_owner_id == owner_id:
        raise Conflict("You already own this site")
    current = await _target(db, website_id, owner_id)
    new = await _target(db, website_id, new_owner_id)
    current.role = Role.ADMIN
    new.role = Role.OWNER
    await db.flush()


async def leave(db: AsyncSession, website_id: uuid.UUID, user_id: uuid.UUID) -> None:
    membership = await _target(db, website_id, user_id)
    if membership.role == Role.OWNER:
        raise Conflict("The owner cannot leave; transfer ownership or delete the site")
    await db.delete(membership)
    await db.flush()

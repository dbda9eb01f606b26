"""Sites, goals, teams, share links, deletion and export.

Access to every ``/api/v1/sites/{website_id}/…`` route is checked before the handler runs by
:func:`datafast.server.auth.site_scope_guard`; ``opt={"site_role": …}`` raises the bar.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeAlias

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response import Stream
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import Role, User, Website
from datafast.domain.accounts.access import Principal, SiteGrant
from datafast.domain.accounts.schemas import TokenBody
from datafast.domain.analytics.jobs import LOCAL_DAYS, LOCAL_DAYS_TIMEOUT
from datafast.domain.billing.service import check_seat_limit, check_site_limit
from datafast.domain.revenue.trust import client_revenue
from datafast.domain.sites import goals, sharing, teams
from datafast.domain.sites.changes import announce_site_change
from datafast.domain.sites.data import count_events, delete_website, export_events_csv
from datafast.domain.sites.onboarding import Onboarding, onboarding
from datafast.domain.sites.schemas import (
    GoalCreate,
    GoalRead,
    GoalUpdate,
    InvitationCreate,
    InvitationRead,
    MemberRead,
    MemberUpdate,
    ShareAccess,
    SharedSiteRead,
    ShareLinkCreate,
    ShareLinkRead,
    ShareLinkUpdate,
    SharePasswordBody,
    SiteCreate,
    SiteRead,
    SiteUpdate,
    Snippet,
    TransferOwnership,
    VerificationRead,
)
from datafast.domain.sites.services import WebsiteService, install_snippet, sites_of
from datafast.domain.sites.verification import verification_token, verification_url, verify_site
from datafast.errors import Forbidden, TooManyRequests
from datafast.lib.eventstore import EventStore
from datafast.lib.mail import Mailer
from datafast.lib.ratelimit import RateLimiter
from datafast.server.api.accounts import request_ip, send_mail_later
from datafast.server.auth import requires_principal, requires_session
from datafast.settings import Settings

__all__ = ("InvitationController", "ShareController", "SiteController", "forget_site")

Db: TypeAlias = NamedDependency[AsyncSession]

SITE = "/{website_id:uuid}"
OWNER = {"site_role": Role.OWNER}
ADMIN = {"site_role": Role.ADMIN}
ANY_MEMBER = {"site_role": Role.VIEWER}
# Never with an API key, whatever its scopes: a leaked key must not delete the site, change
# who is on its team, or mint public links (see domain/accounts/apikeys.py).
SIGNED_IN = {"session_only": True}


async def forget_site(request: Request[Any, Any, Any], website_id: uuid.UUID) -> None:
    """Drop the site from /track's cache here at once, and in every other process."""
    ingest = request.app.state.get("ingest")
    if ingest is not None:
        ingest.sites.forget(str(website_id))
    await announce_site_change(request.app.state.adapters.pubsub, website_id)


async def _local_days(request: Request[Any, Any, Any], website: Website) -> None:
    """Have the site's visitor states by local day kept from its first event (the local_days job)."""
    await request.app.state.adapters.queue.enqueue(
        LOCAL_DAYS, timeout=LOCAL_DAYS_TIMEOUT, website_id=str(website.id), timezone=website.timezone
    )


def _verification(website: Website, settings: Settings) -> VerificationRead:
    return VerificationRead(
        verified=website.verified_at is not None,
        url=verification_url(settings.site_verification_url, website),
        token=verification_token(settings.secret_key, website),
    )


class SiteController(Controller):
    path = "/api/v1/sites"
    tags = ["sites"]

    @get("/", guards=[requires_principal], summary="Your sites and your role on each")
    async def list_sites(self, principal: NamedDependency[Principal], db_session: Db) -> list[SiteRead]:
        assert principal.user is not None
        rows = await sites_of(db_session, principal.user.id, principal.site_ids)
        return [SiteRead.of(website, role) for website, role in rows]

    @post("/", status_code=HTTP_201_CREATED, guards=[requires_principal], summary="Add a site")
    async def create_site(
        self,
        data: JSONBody[SiteCreate],
        principal: NamedDependency[Principal],
        db_session: Db,
        settings: NamedDependency[Settings],
        request: Request[Any, Any, Any],
    ) -> SiteRead:
        assert principal.user is not None
        if principal.read_only or principal.site_ids is not None:
            raise Forbidden("Only a read-write key for all sites (or a signed-in user) can add sites")
        if settings.billing.enabled:
            await check_site_limit(db_session, settings.billing, principal.user)
        website = await WebsiteService(session=db_session).create_site(
            principal.user, data.domain, data.name, data.timezone, data.currency, data.hostnames
        )
        await _local_days(request, website)
        return SiteRead.of(website, Role.OWNER)

    @get(SITE, summary="A site")
    async def read_site(self, site_grant: NamedDependency[SiteGrant]) -> SiteRead:
        return SiteRead.of(site_grant.website, site_grant.role)

    @patch(
        SITE,
        summary="Change a site's domain, name, timezone, currency, extra hostnames, or whether tracker "
        "revenue counts (count_client_revenue, client_revenue_cap)",
    )
    async def update_site(
        self,
        data: JSONBody[SiteUpdate],
        site_grant: NamedDependency[SiteGrant],
        db_session: Db,
        request: Request[Any, Any, Any],
    ) -> SiteRead:
        website = await WebsiteService(session=db_session).update_site(
            site_grant.website,
            domain=data.domain,
            name=data.name,
            timezone=data.timezone,
            currency=data.currency,
            hostnames=data.hostnames,
            count_client_revenue=data.count_client_revenue,
            client_revenue_cap=data.client_revenue_cap,
        )
        await forget_site(request, website.id)
        if data.timezone is not None:
            await _local_days(request, website)
        return SiteRead.of(website, site_grant.role)

    @delete(
        SITE,
        status_code=HTTP_204_NO_CONTENT,
        opt={**OWNER, **SIGNED_IN},
        summary="Delete a site and all its data",
    )
    async def delete_site(
        self,
        website: NamedDependency[Website],
        db_session: Db,
        event_store: NamedDependency[EventStore],
        request: Request[Any, Any, Any],
    ) -> None:
        await delete_website(db_session, event_store, website)
        await forget_site(request, website.id)

    @get(SITE + "/verification", opt=ADMIN, summary="How to prove you own the site's domain")
    async def verification(
        self, website: NamedDependency[Website], settings: NamedDependency[Settings]
    ) -> VerificationRead:
        return _verification(website, settings)

    @post(SITE + "/verification", status_code=200, opt=ADMIN, summary="Check the domain-ownership proof")
    async def verify(
        self, website: NamedDependency[Website], settings: NamedDependency[Settings], db_session: Db
    ) -> VerificationRead:
        await verify_site(
            db_session,
            website,
            secret_key=settings.secret_key,
            url_template=settings.site_verification_url,
            allow_private=settings.site_verification_allow_private,
        )
        return _verification(website, settings)

    @get(SITE + "/onboarding", summary="The site's first-run checklist, each step from what is stored")
    async def first_run(
        self, website: NamedDependency[Website], event_store: NamedDependency[EventStore], db_session: Db
    ) -> Onboarding:
        return await onboarding(db_session, event_store, website)

    @get(SITE + "/snippet", summary="The tracking snippet to install")
    async def snippet(
        self, website: NamedDependency[Website], settings: NamedDependency[Settings]
    ) -> Snippet:
        return Snippet(html=install_snippet(website, settings.base_url))

    @get(
        SITE + "/export",
        opt=ADMIN,
        summary="Export the site's events as CSV (streamed; X-Total-Rows gives the progress total)",
        media_type="text/csv",
    )
    async def export(
        self, website: NamedDependency[Website], event_store: NamedDependency[EventStore], db_session: Db
    ) -> Stream:
        total = await count_events(event_store, website.id)
        policy = await client_revenue(db_session, website)
        return Stream(
            export_events_csv(event_store, website.id, client=policy, currency=website.currency),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{website.domain}-events.csv"',
                "X-Total-Rows": str(total),
            },
        )

    # --- goals

    @get(SITE + "/goals", summary="The site's goals")
    async def list_goals(self, website: NamedDependency[Website], db_session: Db) -> list[GoalRead]:
        return [GoalRead.of(g) for g in await goals.list_goals(db_session, website.id)]

    @post(SITE + "/goals", status_code=HTTP_201_CREATED, summary="Add a goal")
    async def create_goal(
        self,
        data: JSONBody[GoalCreate],
        website: NamedDependency[Website],
        db_session: Db,
    ) -> GoalRead:
        goal = await goals.create_goal(
            db_session, website.id, data.name, data.kind, data.path, data.event_name
        )
        return GoalRead.of(goal)

    @patch(SITE + "/goals/{goal_id:uuid}", summary="Rename a goal or change what it matches")
    async def update_goal(
        self,
        goal_id: FromPath[uuid.UUID],
        data: JSONBody[GoalUpdate],
        website: NamedDependency[Website],
        db_session: Db,
    ) -> GoalRead:
        goal = await goals.update_goal(
            db_session, website.id, goal_id, name=data.name, path=data.path, event_name=data.event_name
        )
        return GoalRead.of(goal)

    @delete(SITE + "/goals/{goal_id:uuid}", status_code=HTTP_204_NO_CONTENT, summary="Remove a goal")
    async def delete_goal(
        self, goal_id: FromPath[uuid.UUID], website: NamedDependency[Website], db_session: Db
    ) -> None:
        await goals.delete_goal(db_session, website.id, goal_id)

    # --- team

    @get(SITE + "/members", summary="The site's team")
    async def list_members(self, website: NamedDependency[Website], db_session: Db) -> list[MemberRead]:
        return await teams.list_members(db_session, website.id)

    @patch(
        SITE + "/members/{user_id:uuid}", opt=SIGNED_IN, summary="Change a member's role (admin or viewer)"
    )
    async def update_member(
        self,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[MemberUpdate],
        website: NamedDependency[Website],
        db_session: Db,
    ) -> MemberRead:
        await teams.set_role(db_session, website.id, user_id, Role(data.role))
        return next(m for m in await teams.list_members(db_session, website.id) if m.user_id == user_id)

    @delete(
        SITE + "/members/{user_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        opt=SIGNED_IN,
        summary="Remove a member",
    )
    async def remove_member(
        self, user_id: FromPath[uuid.UUID], website: NamedDependency[Website], db_session: Db
    ) -> None:
        await teams.remove_member(db_session, website.id, user_id)

    @post(SITE + "/transfer", status_code=HTTP_204_NO_CONTENT, opt=OWNER, guards=[requires_session])
    async def transfer(
        self,
        data: JSONBody[TransferOwnership],
        website: NamedDependency[Website],
        user: NamedDependency[User],
        db_session: Db,
    ) -> None:
        """Make another member the owner; you become an admin."""
        await teams.transfer_ownership(db_session, website.id, user.id, data.user_id)

    @post(SITE + "/leave", status_code=HTTP_204_NO_CONTENT, opt=ANY_MEMBER, guards=[requires_session])
    async def leave(
        self,
        website: NamedDependency[Website],
        user: NamedDependency[User],
        db_session: Db,
    ) -> None:
        """Leave the site's team (the owner transfers ownership first)."""
        await teams.leave(db_session, website.id, user.id)

    @get(SITE + "/invitations", opt=ADMIN, summary="Pending invitations")
    async def list_invitations(
        self, website: NamedDependency[Website], db_session: Db
    ) -> list[InvitationRead]:
        return [InvitationRead.of(i) for i in await teams.list_invitations(db_session, website.id)]

    @post(
        SITE + "/invitations",
        status_code=HTTP_201_CREATED,
        opt=SIGNED_IN,
        summary="Invite someone by email",
    )
    async def invite(
        self,
        data: JSONBody[InvitationCreate],
        website: NamedDependency[Website],
        principal: NamedDependency[Principal],
        db_session: Db,
        settings: NamedDependency[Settings],
        mailer: NamedDependency[Mailer],
    ) -> Response[InvitationRead]:
        if settings.billing.enabled:
            await check_seat_limit(db_session, settings.billing, website.id, data.email)
        token, invitation = await teams.invite(
            db_session, website, principal.user, data.email, Role(data.role)
        )
        inviter = principal.user.email if principal.user else "Someone"
        mail = send_mail_later(
            mailer,
            invitation.email,
            f"You are invited to {website.domain} on DataFast",
            f"{inviter} invited you to see the analytics of {website.domain} as {invitation.role.value}.\n"
            f"Accept within 7 days (sign up with this email address if you have no account):\n\n"
            f"{settings.base_url}/invitations/accept?token={token}\n",
        )
        return Response(InvitationRead.of(invitation), status_code=HTTP_201_CREATED, background=mail)

    @delete(
        SITE + "/invitations/{invitation_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Cancel an invitation",
    )
    async def revoke_invitation(
        self,
        invitation_id: FromPath[uuid.UUID],
        website: NamedDependency[Website],
        db_session: Db,
    ) -> None:
        await teams.revoke_invitation(db_session, website.id, invitation_id)

    # --- share links

    @get(SITE + "/share-links", opt=ADMIN, summary="The site's public share links")
    async def list_share_links(
        self,
        website: NamedDependency[Website],
        db_session: Db,
        settings: NamedDependency[Settings],
    ) -> list[ShareLinkRead]:
        links = await sharing.list_share_links(db_session, website.id)
        return [ShareLinkRead.of(link, settings.base_url) for link in links]

    @post(
        SITE + "/share-links",
        status_code=HTTP_201_CREATED,
        opt=SIGNED_IN,
        summary="Create a public read-only dashboard link",
    )
    async def create_share_link(
        self,
        data: JSONBody[ShareLinkCreate],
        website: NamedDependency[Website],
        principal: NamedDependency[Principal],
        db_session: Db,
        settings: NamedDependency[Settings],
    ) -> ShareLinkRead:
        link = await sharing.create_share_link(
            db_session,
            website,
            data.name,
            data.password,
            created_by=principal.user,
            embed_origins=data.embed_origins,
        )
        return ShareLinkRead.of(link, settings.base_url)

    @patch(
        SITE + "/share-links/{link_id:uuid}",
        opt=SIGNED_IN,
        summary="Rename a share link or change the origins that may embed it",
    )
    async def update_share_link(
        self,
        link_id: FromPath[uuid.UUID],
        data: JSONBody[ShareLinkUpdate],
        website: NamedDependency[Website],
        db_session: Db,
        settings: NamedDependency[Settings],
    ) -> ShareLinkRead:
        link = await sharing.update_share_link(
            db_session, website.id, link_id, name=data.name, embed_origins=data.embed_origins
        )
        return ShareLinkRead.of(link, settings.base_url)

    @delete(
        SITE + "/share-links/{link_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        opt=SIGNED_IN,
        summary="Revoke a share link",
    )
    async def delete_share_link(
        self, link_id: FromPath[uuid.UUID], website: NamedDependency[Website], db_session: Db
    ) -> None:
        await sharing.delete_share_link(db_session, website.id, link_id)


class InvitationController(Controller):
    path = "/api/v1/invitations"
    tags = ["sites"]

    @post("/accept", status_code=200, guards=[requires_session], summary="Join a site with an invitation")
    async def accept(
        self,
        data: JSONBody[TokenBody],
        user: NamedDependency[User],
        db_session: Db,
    ) -> SiteRead:
        website, role = await teams.accept_invitation(db_session, user, data.token)
        return SiteRead.of(website, role)


class ShareController(Controller):
    """Public: anyone with the link (and its password, when it has one)."""

    path = "/api/v1/share"
    tags = ["share links"]

    @get("/{slug:str}", summary="What a share link shows")
    async def read(self, slug: FromPath[str], db_session: Db) -> SharedSiteRead:
        link, website = await sharing.get_share_link(db_session, slug)
        return SharedSiteRead(
            domain=website.domain, name=website.name, password_required=link.password_hash is not None
        )

    @post("/{slug:str}/access", status_code=200, summary="Open a share link: a read-only access token")
    async def access(
        self,
        slug: FromPath[str],
        data: JSONBody[SharePasswordBody],
        db_session: Db,
        settings: NamedDependency[Settings],
        rate_limiter: NamedDependency[RateLimiter],
        request: Request[Any, Any, Any],
    ) -> ShareAccess:
        verdict = await rate_limiter.hit(f"share:{request_ip(request)}", 20, 15 * 60)
        if not verdict.allowed:
            raise TooManyRequests("Too many attempts; try again later", verdict.retry_after)
        token, ttl, website = await sharing.open_share_link(
            db_session, settings.secret_key, slug, data.password
        )
        return ShareAccess(
            access_token=token,
            expires_in=ttl,
            website_id=website.id,
            domain=website.domain,
            name=website.name,
            timezone=website.timezone,
            currency=website.currency,
        )

"""Per-visitor privacy requests on a site: find, export (JSON) and erase a person's data.

Admins of the site only (a signed-in member or an API key of one; erasing needs write access).
See :mod:`datafast.domain.sites.privacy` for what is matched, exported and erased.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, TypeAlias

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import PrivacyRequest, Role, Website
from datafast.domain.accounts.access import Principal
from datafast.domain.analytics.cache import ResultCache
from datafast.domain.ingest.process.sessions import SessionTracker, ValkeySessionTracker
from datafast.domain.sites.privacy import (
    Erased,
    Export,
    ForgetVisits,
    Subject,
    erase_request,
    export_request,
    list_requests,
)
from datafast.lib.adapters import Adapters
from datafast.lib.eventstore import EventStore
from datafast.settings import Settings

__all__ = ("PrivacyController",)

Db: TypeAlias = NamedDependency[AsyncSession]
ADMIN = {"site_role": Role.ADMIN}
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=320)]


class PrivacySubject(msgspec.Struct, forbid_unknown_fields=True):
    """Exactly one of the three: the person's visitor id, the user id your site passed to
    ``identify``, or their email address (matched by its hash, as ``identify`` stores it)."""

    visitor_id: Text | None = None
    user_id: Text | None = None
    email: Text | None = None

    def subject(self) -> Subject:
        return Subject.of(self.visitor_id, self.user_id, self.email)


class PrivacyRequestRead(msgspec.Struct):
    id: uuid.UUID
    kind: str
    matched_by: str
    requested_by: str
    visitors: int
    rows: int
    created_at: datetime

    @classmethod
    def of(cls, row: PrivacyRequest) -> PrivacyRequestRead:
        return cls(row.id, row.kind, row.matched_by, row.requested_by, row.visitors, row.rows, row.created_at)


def _requested_by(principal: Principal) -> str:
    who = principal.user.email if principal.user is not None else "unknown"
    return f"{who} (API key)" if principal.api_key_id is not None else who


def _forget_visits(request: Request[Any, Any, Any]) -> ForgetVisits | None:
    """Ingest's open-visit state: Valkey in scaled mode, this process's processor in embedded mode."""
    adapters: Adapters = request.app.state.adapters
    tracker: SessionTracker | None = None
    if adapters.valkey is not None:
        tracker = ValkeySessionTracker(adapters.valkey)
    elif (pipeline := request.app.state.get("ingest_pipeline")) is not None and pipeline.writer is not None:
        tracker = pipeline.writer.processor.sessions
    if tracker is None:
        return None
    found: SessionTracker = tracker

    async def forget(site: str, visitors: Sequence[str]) -> None:
        await found.forget(f"{site}:{visitor}" for visitor in visitors)

    return forget


class PrivacyController(Controller):
    path = "/api/v1/sites/{website_id:uuid}/privacy"
    tags = ["privacy"]

    @post(
        "/export",
        status_code=200,
        opt={**ADMIN, "read": True},
        summary="Export everything held about one visitor (JSON)",
        description="Name the person by `visitor_id`, `user_id` (as passed to identify) or `email`. "
        "The answer lists the visitor ids and email hashes matched and every stored row about them, per "
        "table (events, sessions, payments). The request is recorded (never the identifiers).",
    )
    async def export(
        self,
        data: JSONBody[PrivacySubject],
        website: NamedDependency[Website],
        principal: NamedDependency[Principal],
        event_store: NamedDependency[EventStore],
        db_session: Db,
    ) -> Response[Export]:
        exported = await export_request(
            db_session, event_store, website, data.subject(), _requested_by(principal)
        )
        return Response(
            exported,
            headers={"Content-Disposition": f'attachment; filename="{website.domain}-privacy-export.json"'},
        )

    @post(
        "/erase",
        status_code=200,
        opt=ADMIN,
        summary="Erase one visitor: their events and visits deleted, their payments kept but unlinked",
        description="Same body as export. Deletes the person's rows from every table holding a visitor id "
        "or email hash, clears the visitor link and email hash of their payments (amounts stay in revenue, "
        "as unattributed), and recomputes the dashboard rollups of the days they visited.",
    )
    async def erase(
        self,
        data: JSONBody[PrivacySubject],
        website: NamedDependency[Website],
        principal: NamedDependency[Principal],
        event_store: NamedDependency[EventStore],
        settings: NamedDependency[Settings],
        db_session: Db,
        request: Request[Any, Any, Any],
    ) -> Erased:
        cache = ResultCache(request.app.state.adapters.cache, settings.stats_cache_ttl)
        return await erase_request(
            db_session,
            event_store,
            website,
            data.subject(),
            _requested_by(principal),
            forget_visits=_forget_visits(request),
            changed=cache.invalidate,
        )

    @get("/requests", opt=ADMIN, summary="The site's privacy requests, newest first (who, when, what)")
    async def requests(self, website: NamedDependency[Website], db_session: Db) -> list[PrivacyRequestRead]:
        return [PrivacyRequestRead.of(row) for row in await list_requests(db_session, website.id)]

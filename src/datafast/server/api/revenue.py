"""Revenue routes: provider webhooks, payment connections, the Payments API, attribution.

Webhooks (``/webhooks/{provider}/{connection_id}``) are authenticated by their signature
only; everything under ``/api/v1`` by a session or an API key like every other route.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, TypeAlias

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import PaymentConnection, Role, Website
from datafast.domain.accounts.access import Principal, site_access
from datafast.domain.analytics.attribution import (
    DIMENSIONS,
    MODELS,
    AttributionQuery,
    attribution_report,
)
from datafast.domain.analytics.cache import ResultCache
from datafast.domain.analytics.conversions import DEFAULT_MODEL
from datafast.domain.analytics.credits import Credits
from datafast.domain.analytics.dates import attribution_window
from datafast.domain.analytics.schemas import AttributionReport
from datafast.domain.revenue import connections
from datafast.domain.revenue.api_payments import record_api_payment
from datafast.domain.revenue.schemas import (
    ConnectionCreate,
    ConnectionRead,
    PaymentCreate,
    PaymentRecorded,
    WebhookReceived,
)
from datafast.domain.revenue.sealing import SecretBox
from datafast.domain.revenue.service import PaymentService
from datafast.domain.revenue.store import PaymentStore
from datafast.domain.revenue.trust import client_revenue
from datafast.domain.revenue.webhooks import receive_webhook
from datafast.errors import InvalidInput
from datafast.lib.adapters import Adapters
from datafast.lib.eventstore import EventStore
from datafast.server.api.stats import stats_rate_limit
from datafast.server.auth import requires_principal
from datafast.settings import Settings

__all__ = ("PaymentsController", "RevenueController", "WebhookController")

Db: TypeAlias = NamedDependency[AsyncSession]
ADMIN = {"site_role": Role.ADMIN}


def _payments(adapters: Adapters) -> PaymentService:
    """Payments are announced live, get their credited visits and drop the site's cached Stats API
    results, like tracked events."""
    cache = ResultCache(adapters.cache, adapters.settings.stats_cache_ttl)
    return PaymentService(
        PaymentStore(adapters.event_store),
        adapters.pubsub,
        on_written=cache.invalidate,
        on_linked=Credits(adapters.event_store).refresh,
    )


def _read(connection: PaymentConnection, settings: Settings) -> ConnectionRead:
    return ConnectionRead(
        id=connection.id,
        provider=connection.provider,
        webhook_url=connections.webhook_url(settings.base_url, connection),
        events=connections.EVENTS[connection.provider],
        created_at=connection.created_at,
    )


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["revenue"]

    @post(
        "/{provider:str}/{connection_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Receive a payment provider's webhook (signed; see the connection's webhook_url)",
    )
    async def receive(
        self,
        provider: FromPath[str],
        connection_id: FromPath[uuid.UUID],
        request: Request[Any, Any, Any],
        db_session: Db,
        settings: NamedDependency[Settings],
        adapters: NamedDependency[Adapters],
    ) -> WebhookReceived:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        return await receive_webhook(
            db_session,
            _payments(adapters),
            SecretBox(settings.secret_key),
            provider,
            connection_id,
            body,
            headers,
        )


class RevenueController(Controller):
    path = "/api/v1/sites/{website_id:uuid}/revenue"
    tags = ["revenue"]

    @get("/connections", opt=ADMIN, summary="The site's payment provider connections")
    async def list_connections(
        self, website: NamedDependency[Website], db_session: Db, settings: NamedDependency[Settings]
    ) -> list[ConnectionRead]:
        return [_read(c, settings) for c in await connections.list_connections(db_session, website.id)]

    @post(
        "/connections",
        status_code=HTTP_201_CREATED,
        opt={**ADMIN, "session_only": True},
        summary="Connect a payment provider: store its webhook secret (encrypted) and get the webhook URL",
    )
    async def create_connection(
        self,
        data: JSONBody[ConnectionCreate],
        website: NamedDependency[Website],
        db_session: Db,
        settings: NamedDependency[Settings],
    ) -> ConnectionRead:
        connection = await connections.create_connection(
            db_session, SecretBox(settings.secret_key), website.id, data.provider, data.webhook_secret
        )
        return _read(connection, settings)

    @delete(
        "/connections/{connection_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        opt={**ADMIN, "session_only": True},
        summary="Disconnect a payment provider (its payments stay)",
    )
    async def delete_connection(
        self, connection_id: FromPath[uuid.UUID], website: NamedDependency[Website], db_session: Db
    ) -> None:
        await connections.delete_connection(db_session, website.id, connection_id)

    @get(
        "/attribution",
        opt={"share": True},
        guards=[stats_rate_limit],
        summary="Revenue by a dimension under first, last or last non-direct touch",
        description="`from`/`to` default to the last 30 days; `from` may not be before 2000-01-01, `to` "
        "not more than a day ahead, and the window is at most 1,830 days. Rate-limited and cached like "
        "the Stats API.",
    )
    async def attribution(
        self,
        website: NamedDependency[Website],
        event_store: NamedDependency[EventStore],
        db_session: Db,
        adapters: NamedDependency[Adapters],
        model: Annotated[
            str, QueryParameter(description="first | last | last_non_direct (default, as in the Stats API)")
        ] = DEFAULT_MODEL,
        dimension: Annotated[
            str, QueryParameter(description="a sessions dimension, e.g. utm_source")
        ] = "source",
        date_from: Annotated[datetime | None, QueryParameter(name="from")] = None,
        date_to: Annotated[datetime | None, QueryParameter(name="to")] = None,
        lookback_days: Annotated[int, QueryParameter(ge=1, le=365)] = 30,
    ) -> AttributionReport:
        if model not in MODELS:
            raise InvalidInput(f"model must be one of {', '.join(MODELS)}")
        if dimension not in DIMENSIONS:
            raise InvalidInput(f"dimension must be one of {', '.join(DIMENSIONS)}")
        start, end = attribution_window(date_from, date_to, datetime.now(UTC))
        query = AttributionQuery(
            website_id=website.id,
            currency=website.currency.upper(),
            model=model,
            dimension=dimension,
            date_from=start,
            date_to=end,
            lookback_days=lookback_days,
            client_revenue=await client_revenue(db_session, website),
        )
        cache = ResultCache(adapters.cache, adapters.settings.stats_cache_ttl)
        return await cache.get_or_compute(
            str(website.id),
            "attribution",
            query,
            AttributionReport,
            lambda: attribution_report(event_store, query),
        )


class PaymentsController(Controller):
    path = "/api/v1/payments"
    tags = ["revenue"]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        guards=[requires_principal],
        summary="Record a payment or refund from your server (idempotent by transaction_id)",
    )
    async def create_payment(
        self,
        data: JSONBody[PaymentCreate],
        principal: NamedDependency[Principal],
        db_session: Db,
        adapters: NamedDependency[Adapters],
    ) -> Response[PaymentRecorded]:
        website = await site_access(db_session, principal, data.website_id, write=True, key_scope="payments")
        recorded = await record_api_payment(_payments(adapters), website, data)
        return Response(recorded, status_code=HTTP_200_OK if recorded.duplicate else HTTP_201_CREATED)

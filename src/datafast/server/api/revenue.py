"""Revenue routes: provider webhooks, payment connections, the Payments API, attribution.

Webhooks (``/webhooks/{provider}/{connection_id}``) are authenticated by their signature
only; everything under ``/api/v1`` by a session or an API key like every other route.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeAlias
from zoneinfo import ZoneInfo

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import PaymentConnection, Role, Website
from datafast.domain.accounts.access import Principal, site_access
from datafast.domain.analytics import subscriptions as subscription_metrics
from datafast.domain.analytics.attribution import (
    DIMENSIONS,
    MODELS,
    AttributionQuery,
    attribution_report,
)
from datafast.domain.analytics.cache import ResultCache
from datafast.domain.analytics.conversions import DEFAULT_MODEL
from datafast.domain.analytics.dates import attribution_window
from datafast.domain.analytics.schemas import AttributionReport
from datafast.domain.reports.alerts import PaymentAlerts
from datafast.domain.revenue import connections
from datafast.domain.revenue.api_payments import record_api_payment
from datafast.domain.revenue.history import start_history
from datafast.domain.revenue.schemas import (
    ConnectionCreate,
    ConnectionRead,
    HistoryRequest,
    PaymentCreate,
    PaymentRecorded,
    WebhookReceived,
)
from datafast.domain.revenue.sealing import SecretBox
from datafast.domain.revenue.service import PaymentService
from datafast.domain.revenue.trust import client_revenue
from datafast.domain.revenue.webhooks import receive_webhook
from datafast.errors import InvalidInput
from datafast.lib.adapters import Adapters
from datafast.lib.eventstore import EventStore
from datafast.server.api.stats import stats_rate_limit
from datafast.server.auth import requires_principal
from datafast.settings import Settings

__all__ = ("PaymentsController", "RevenueController", "SubscriptionsController", "WebhookController")

Db: TypeAlias = NamedDependency[AsyncSession]
ADMIN = {"site_role": Role.ADMIN}


def _payments(adapters: Adapters) -> PaymentService:
    """New payments are alerted to the members who asked (see PaymentService.wired for the rest)."""
    return PaymentService.wired(adapters, on_new=PaymentAlerts(adapters.queue))


def _read(connection: PaymentConnection, settings: Settings) -> ConnectionRead:
    return ConnectionRead(
        id=connection.id,
        provider=connection.provider,
        webhook_url=connections.webhook_url(settings.base_url, connection),
        events=connections.EVENTS[connection.provider],
        created_at=connection.created_at,
        history=connection.history,
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

    @post(
        "/connections/{connection_id:uuid}/history",
        status_code=HTTP_202_ACCEPTED,
        opt={**ADMIN, "session_only": True},
        summary="Import the provider's last days of payments, refunds and subscriptions (Stripe; a read key)",
    )
    async def start_history_import(
        self,
        connection_id: FromPath[uuid.UUID],
        data: JSONBody[HistoryRequest],
        website: NamedDependency[Website],
        db_session: Db,
        settings: NamedDependency[Settings],
        adapters: NamedDependency[Adapters],
    ) -> ConnectionRead:
        connection = await connections.site_connection(db_session, website.id, connection_id)
        await start_history(
            db_session, SecretBox(settings.secret_key), adapters.queue, connection, data.api_key, data.days
        )
        return _read(connection, settings)

    @get(
        "/connections/{connection_id:uuid}",
        opt=ADMIN,
        summary="A payment connection, with its history import's progress",
    )
    async def read_connection(
        self,
        connection_id: FromPath[uuid.UUID],
        website: NamedDependency[Website],
        db_session: Db,
        settings: NamedDependency[Settings],
    ) -> ConnectionRead:
        return _read(await connections.site_connection(db_session, website.id, connection_id), settings)

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


def _month(value: str | None, key: str, default: date) -> date:
    if value is None:
        return default
    try:
        parsed = datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        raise InvalidInput(
            f"{key} must be a month, YYYY-MM", extra={"errors": [{"key": key, "message": "YYYY-MM"}]}
        ) from None
    if not 2000 <= parsed.year <= datetime.now(UTC).year + 1:
        raise InvalidInput(f"{key} must be a month from 2000-01 to next year")
    return parsed


def subscriptions_query(
    website: Website,
    month_from: str | None,
    month_to: str | None,
    by: str | None,
    model: str = "first_touch",
    lookback_days: int = 30,
) -> subscription_metrics.SubscriptionQuery:
    """Validate the report's months (default: the last 12, this one included) and dimension."""
    if by is not None and by not in subscription_metrics.DIMENSIONS:
        raise InvalidInput(f"by must be one of {', '.join(subscription_metrics.DIMENSIONS)}")
    if model not in subscription_metrics.MODELS:
        raise InvalidInput(f"model must be one of {', '.join(subscription_metrics.MODELS)}")
    today = datetime.now(ZoneInfo(website.timezone)).date().replace(day=1)
    last = _month(month_to, "to", today)
    first = _month(month_from, "from", date(last.year - 1 + (last.month == 12), last.month % 12 + 1, 1))
    if first > last:
        raise InvalidInput("from must not be after to")
    if len(subscription_metrics.month_range(first, last)) > subscription_metrics.MAX_MONTHS:
        raise InvalidInput(f"at most {subscription_metrics.MAX_MONTHS} months")
    return subscription_metrics.SubscriptionQuery(
        website_id=website.id,
        currency=website.currency.upper(),
        timezone=website.timezone,
        first_month=first,
        last_month=last,
        dimension=by,
        model=model,
        lookback_days=lookback_days,
    )


class SubscriptionsController(Controller):
    path = "/api/v1/sites/{website_id:uuid}/subscriptions"
    tags = ["revenue"]

    @get(
        "/",
        opt={"share": True},
        guards=[stats_rate_limit],
        summary="MRR and its movements, subscribers, trials, churn, ARPU and LTV by month",
        description="`from`/`to` are months (`YYYY-MM`, default: the last 12 months); `by` breaks every "
        "month down by the subscribers' first-touch acquisition (source, channel, utm_source, utm_medium, "
        "utm_campaign, landing_page, country). Amounts in the site's currency, minor units.",
    )
    async def report(
        self,
        website: NamedDependency[Website],
        event_store: NamedDependency[EventStore],
        adapters: NamedDependency[Adapters],
        month_from: Annotated[str | None, QueryParameter(name="from")] = None,
        month_to: Annotated[str | None, QueryParameter(name="to")] = None,
        by: Annotated[str | None, QueryParameter(description="an acquisition dimension")] = None,
        model: Annotated[
            str,
            QueryParameter(
                description="first_touch (the visitor's first visit ever, default) | first | last | "
                "last_non_direct (over the visits before the first payment, as in the Stats API)"
            ),
        ] = "first_touch",
        lookback_days: Annotated[int, QueryParameter(ge=1, le=365)] = 30,
    ) -> subscription_metrics.SubscriptionReport:
        query = subscriptions_query(website, month_from, month_to, by, model, lookback_days)
        cache = ResultCache(adapters.cache, adapters.settings.stats_cache_ttl)
        return await cache.get_or_compute(
            str(website.id),
            "subscriptions",
            query,
            subscription_metrics.SubscriptionReport,
            lambda: subscription_metrics.subscription_report(event_store, query),
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

"""``create_app()``: the one composition root. Settings pick every adapter; routes get them by DI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.plugins.problem_details import ProblemDetailsPlugin
from litestar.plugins.prometheus import PrometheusConfig
from litestar.types import ASGIApp, Receive, Scope, Send

from datafast import __version__
from datafast.db.config import sqlalchemy_config
from datafast.db.migrate import migrate_clickhouse, migrate_config_db
from datafast.db.models import User, Website
from datafast.db.retention import apply_retention
from datafast.domain.accounts.access import Principal, SiteGrant
from datafast.domain.analytics.cache import ResultCache
from datafast.domain.analytics.credits import Credits
from datafast.domain.analytics.jobs import LOCAL_DAYS, LOCAL_DAYS_TIMEOUT
from datafast.domain.analytics.local_days import LocalDays
from datafast.domain.billing.gate import BillingGate
from datafast.domain.ingest.capture.track import handle_track, track
from datafast.domain.ingest.pipeline import IngestPipeline, start_ingest
from datafast.domain.realtime import RealtimeHub
from datafast.domain.revenue.service import PaymentService
from datafast.domain.revenue.store import PaymentStore
from datafast.domain.sites.changes import follow_site_changes
from datafast.domain.sites.sharing import embed_origins_of
from datafast.jobs import JOBS, SCHEDULE
from datafast.lib.adapters import Adapters, create_adapters
from datafast.lib.cache import Cache
from datafast.lib.clientip import TrustedProxies
from datafast.lib.eventstore import EventStore
from datafast.lib.mail import Mailer, QueuedMailer, create_mailer
from datafast.lib.pubsub import PubSub
from datafast.lib.queue import InProcessQueue, JobQueue, run_schedule
from datafast.lib.ratelimit import RateLimiter
from datafast.log import configure_logging, get_logger
from datafast.server.api import API_ROUTES
from datafast.server.auth import AUTH_DEPENDENCIES, site_scope_guard
from datafast.server.docs import SelfHostedScalar
from datafast.server.headers import SecurityHeadersMiddleware
from datafast.server.health import HealthController
from datafast.server.metrics import metrics
from datafast.server.middleware import AccessLogMiddleware
from datafast.server.problems import problem_details_config, unhandled_exception_handler
from datafast.server.realtime import realtime_stream
from datafast.server.script import script_router
from datafast.server.spa import spa_router
from datafast.server.telemetry import Telemetry
from datafast.settings import Settings, load_settings

__all__ = ("create_app", "create_asgi")

log = get_logger(__name__)


HTTP_METRICS = PrometheusConfig(
    app_name="datafast",
    prefix="datafast_http",
    group_path=True,  # the route's template, not each site's id: bounded label values
    exclude=["^/metrics$", "^/healthz$", "^/readyz$"],
    exclude_unhandled_paths=True,
)
"""Request counts and latency histograms per route (``datafast_http_*`` on /metrics)."""


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or load_settings()
    configure_logging(settings.log_format, settings.log_level)
    telemetry = Telemetry(settings)
    db_config = sqlalchemy_config(settings)
    engine = db_config.get_engine()
    telemetry.instrument_database(engine)
    mailer = create_mailer(settings)

    @asynccontextmanager
    async def adapters_lifespan(app: Litestar) -> AsyncIterator[None]:
        adapters = await create_adapters(settings, JOBS, telemetry.provider)
        try:
            if settings.migrate_on_start:
                await migrate_config_db(engine)
                await migrate_clickhouse(adapters.event_store)
                await apply_retention(adapters.event_store, settings.data_retention_days)
            try:
                await adapters.event_store.open()  # before the first report, not during it
            except Exception as exc:  # ClickHouse not ready: /readyz says so, clients connect when asked
                log.warning("could not connect to ClickHouse at start", error=str(exc)[:300])
            app.state.adapters = adapters
            app.state.local_days = LocalDays(adapters.event_store)  # the Stats API's, per process
            adapters.job_context["engine"] = engine  # jobs run in-process embedded
            if isinstance(adapters.queue, InProcessQueue):  # embedded: no worker runs the cron
                app.state.schedule = asyncio.create_task(run_schedule(adapters.queue, SCHEDULE))
                # not only at the first cron tick
                await adapters.queue.enqueue(LOCAL_DAYS, timeout=LOCAL_DAYS_TIMEOUT)
            # New rows drop the sites' cached Stats API results.
            written = ResultCache(adapters.cache, settings.stats_cache_ttl).invalidate
            # An identify stored after a payment links it then (the payment-time lookup missed it).
            # The money's credited visits are kept as payments and visits arrive.
            credits = Credits(adapters.event_store)
            payments = PaymentService(
                PaymentStore(adapters.event_store),
                on_written=written,
                on_linked=credits.refresh,
                locks=adapters.locks,
            )
            pipeline = await start_ingest(
                adapters, engine, written, payments.link_identified, credits.after_insert
            )
            app.state.ingest_pipeline = pipeline
            app.state.ingest = pipeline.capture
            if settings.billing.enabled:  # hosted mode: unpaid accounts past grace get 402 at /track
                gate = BillingGate(engine, settings.billing)
                pipeline.capture.gate = gate.refusal
                app.state.billing_gate = gate
            app.state.trusted_proxies = TrustedProxies(settings.trusted_proxies)
            app.state.realtime = RealtimeHub(adapters.pubsub, heartbeat=settings.realtime_heartbeat)
            log.info("datafast started", mode=settings.mode, version=__version__, base_url=settings.base_url)
            async with follow_site_changes(adapters.pubsub, pipeline.capture.sites):
                yield
        finally:
            schedule: asyncio.Task[None] | None = app.state.get("schedule")
            if schedule is not None:
                schedule.cancel()
            hub: RealtimeHub | None = app.state.get("realtime")
            if hub is not None:
                await hub.close()
            started: IngestPipeline | None = app.state.get("ingest_pipeline")
            if started is not None:
                await started.stop()
            await adapters.close()
            # advanced-alchemy disposes only the first engine of a process (its state keys get
            # suffixed for later configs), so the app that made the engine disposes it.
            await engine.dispose()
            telemetry.shutdown()

    return Litestar(
        route_handlers=[
            HealthController,
            track,
            metrics,
            script_router(),
            *API_ROUTES,
            realtime_stream,
            # Last: its catch-all answers the dashboard's client-side routes.
            spa_router(share_embeds=embed_origins_of),
        ],
        state=State({"settings": settings, "db_config": db_config}),
        guards=[site_scope_guard],
        lifespan=[adapters_lifespan],
        dependencies={
            "adapters": Provide(_adapters, sync_to_thread=False),
            "event_store": Provide(_event_store, sync_to_thread=False),
            "cache": Provide(_cache, sync_to_thread=False),
            "rate_limiter": Provide(_rate_limiter, sync_to_thread=False),
            "pubsub": Provide(_pubsub, sync_to_thread=False),
            "queue": Provide(_queue, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "mailer": Provide(_mailer(settings, mailer), sync_to_thread=False),
            **AUTH_DEPENDENCIES,
        },
        plugins=[
            SQLAlchemyPlugin(config=db_config),
            ProblemDetailsPlugin(problem_details_config()),
            *telemetry.plugins(),
        ],
        middleware=[
            HTTP_METRICS.middleware,
            DefineMiddleware(AccessLogMiddleware),
            DefineMiddleware(SecurityHeadersMiddleware, https=settings.secure_cookies),
        ],
        exception_handlers={Exception: unhandled_exception_handler},
        openapi_config=OpenAPIConfig(
            title="DataFast",
            version=__version__,
            description="Revenue-first web analytics.",
            path="/api/schema",
            render_plugins=[SelfHostedScalar()],
        ),
        logging_config=None,
        signature_types=[Adapters, Settings, Mailer, Principal, User, Website, SiteGrant],
    )


def create_asgi() -> ASGIApp:
    """What ``datafast serve`` runs: the app, with POST /track answered before the framework.

    /track is the hot path (thousands of requests a second on one process); routing,
    middleware and exception layers cost more there than the ingest work itself.
    """
    app = create_app()
    state = app.state

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["path"] == "/track":
            await handle_track(state.ingest, state.trusted_proxies, scope, receive, send)
        else:
            await app(scope, receive, send)

    return asgi


def _mailer(settings: Settings, mailer: Mailer) -> Callable[[State], Mailer]:
    """Scaled mode (Valkey and a ClickHouse server, so ``datafast worker`` processes run): mail goes
    through SAQ, sent and retried by a worker. Otherwise (embedded ClickHouse, which no worker
    process can open) it is sent from this process."""
    queued = settings.valkey_url is not None and not settings.embedded_clickhouse

    def provide(state: State) -> Mailer:
        return QueuedMailer(_queue(state)) if queued else mailer

    return provide


def _adapters(state: State) -> Adapters:
    adapters: Adapters = state.adapters
    return adapters


def _event_store(state: State) -> EventStore:
    return _adapters(state).event_store


def _cache(state: State) -> Cache:
    return _adapters(state).cache


def _rate_limiter(state: State) -> RateLimiter:
    return _adapters(state).rate_limiter


def _pubsub(state: State) -> PubSub:
    return _adapters(state).pubsub


def _queue(state: State) -> JobQueue:
    return _adapters(state).queue

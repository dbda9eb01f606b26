"""``datafast worker`` (scaled mode): runs SAQ jobs from Valkey — the ingest stream's partitions
(:mod:`datafast.domain.ingest.jobs`) and every other queued job."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Any

from prometheus_client import start_http_server
from saq import CronJob, Worker
from saq.job import Job, Status
from sqlalchemy.ext.asyncio import AsyncEngine

from datafast.db.config import sqlalchemy_config
from datafast.domain.analytics.cache import ResultCache
from datafast.domain.analytics.credits import Credits
from datafast.domain.analytics.jobs import LOCAL_DAYS, LOCAL_DAYS_TIMEOUT
from datafast.domain.ingest.jobs import dispatch, requeue
from datafast.domain.ingest.pipeline import create_stream_processing
from datafast.domain.revenue.service import PaymentService
from datafast.domain.revenue.store import PaymentStore
from datafast.jobs import JOBS, SCHEDULE
from datafast.lib.adapters import Adapters, create_adapters
from datafast.lib.metrics import WorkerMetrics
from datafast.lib.queue import SaqQueue
from datafast.log import get_logger
from datafast.settings import Settings

__all__ = ("create_worker", "run_worker")

log = get_logger(__name__)


def create_worker(
    adapters: Adapters,
    engine: AsyncEngine,
    concurrency: int,
    *,
    metrics: WorkerMetrics | None = None,
    shutdown_grace: int = 5,
    **drainer_options: Any,
) -> Worker[Any]:
    """A SAQ worker wired as ``datafast worker`` runs it: ``concurrency`` slots for queued jobs,
    plus one per ingest partition (a drain job holds its slot for its lease)."""
    settings = adapters.settings
    queue = adapters.queue
    if not isinstance(queue, SaqQueue):
        raise RuntimeError("datafast worker needs VALKEY_URL")
    metrics = metrics or WorkerMetrics()
    # New data drops the sites' cached Stats API results; an identify links payments stored before it.
    written = ResultCache(adapters.cache, settings.stats_cache_ttl).invalidate
    credits = Credits(adapters.event_store)  # the money's credited visits, kept as it and visits arrive
    payments = PaymentService(
        PaymentStore(adapters.event_store),
        on_written=written,
        on_linked=credits.refresh,
        locks=adapters.locks,
    )
    processing = create_stream_processing(
        adapters,
        engine,
        on_written=written,
        on_batch=metrics.observe_batch,
        on_identified=payments.link_identified,
        on_inserted=credits.after_insert,
        **drainer_options,
    )

    async def startup(ctx: Any) -> None:
        ctx["adapters"] = adapters
        ctx["engine"] = engine
        ctx["ingest"] = processing
        await processing.enqueue(
            queue.saq, await processing.in_use(scan=True)
        )  # not only at the first cron tick
        await queue.enqueue(LOCAL_DAYS, timeout=LOCAL_DAYS_TIMEOUT)

    async def after_process(ctx: Any) -> None:
        job: Job | None = ctx.get("job")
        if job is not None:
            outcome = "retried" if job.status == Status.QUEUED else job.status.value
            metrics.jobs.labels(job.function, outcome).inc()
        await requeue(ctx)

    return Worker(
        queue.saq,
        functions=set(JOBS.items()),
        cron_jobs=[
            CronJob(dispatch, cron="* * * * * */5", unique=True),  # every 5 s
            # Scheduled jobs sweep every site or account: an hour each, not SAQ's 10 s default.
            *(CronJob(JOBS[name], cron=cron, unique=True, timeout=3600) for name, cron in SCHEDULE),
        ],
        concurrency=concurrency + settings.ingest_partitions,
        startup=startup,
        after_process=after_process,
        # A dead worker's drain job is retried once its heartbeat is this stale.
        timers={
            "schedule": 1,
            "worker_info": 10,
            "abort": 1,
            "sweep": max(1, settings.ingest_heartbeat // 3),
        },
        # SAQ waits the whole grace period at shutdown (its pollers never finish early): keep it short.
        shutdown_grace_period_s=shutdown_grace,
        id=f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
    )


async def run_worker(settings: Settings, concurrency: int) -> None:
    adapters = await create_adapters(settings, JOBS)
    metrics = WorkerMetrics()
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, settings.worker_metrics_host, metrics.registry)
    engine = sqlalchemy_config(settings).get_engine()  # the sites' hostnames and currencies
    worker = create_worker(adapters, engine, concurrency, metrics=metrics)
    log.info("worker started", concurrency=concurrency, jobs=sorted(worker.functions), id=worker.id)
    try:
        await worker.start()  # until SIGINT or SIGTERM: leases end after their batch, the rest is cancelled
    finally:
        log.info("worker stopped")
        await engine.dispose()
        await adapters.close()

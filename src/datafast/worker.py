"""``datafast worker`` (scaled mode): processes the ingest stream into ClickHouse and runs queued jobs."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from prometheus_client import start_http_server
from saq import Worker
from saq.job import Job, Status

from datafast.db.config import sqlalchemy_config
from datafast.domain.analytics.cache import ResultCache
from datafast.domain.ingest.pipeline import create_stream_drainer
from datafast.domain.revenue.service import PaymentService
from datafast.domain.revenue.store import PaymentStore
from datafast.jobs import JOBS
from datafast.lib.adapters import create_adapters
from datafast.lib.metrics import WorkerMetrics
from datafast.lib.queue import SaqQueue
from datafast.log import get_logger
from datafast.settings import Settings

__all__ = ("run_worker",)

log = get_logger(__name__)


async def run_worker(settings: Settings, concurrency: int) -> None:
    adapters = await create_adapters(settings, JOBS)
    queue = adapters.queue
    if not isinstance(queue, SaqQueue):  # pragma: no cover - the CLI refuses this earlier
        raise RuntimeError("datafast worker needs VALKEY_URL")

    async def startup(ctx: Any) -> None:
        ctx["adapters"] = adapters

    metrics = WorkerMetrics()

    async def after_process(ctx: Any) -> None:
        job: Job | None = ctx.get("job")
        if job is not None:
            outcome = "retried" if job.status == Status.QUEUED else job.status.value
            metrics.jobs.labels(job.function, outcome).inc()

    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, settings.worker_metrics_host, metrics.registry)

    worker = Worker(
        queue.saq,
        functions=list(JOBS.items()),
        concurrency=concurrency,
        startup=startup,
        after_process=after_process,
        # SAQ waits the whole grace period at shutdown (its pollers never finish early): keep it short.
        shutdown_grace_period_s=5,
    )
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    assert adapters.valkey is not None
    # The ingest stream's consumer: web processes only append; workers put events in ClickHouse.
    engine = sqlalchemy_config(settings).get_engine()  # the sites' hostnames and currencies
    # New data drops the sites' cached Stats API results.
    written = ResultCache(adapters.cache, settings.stats_cache_ttl).invalidate
    payments = PaymentService(PaymentStore(adapters.event_store), on_written=written)
    drainer = create_stream_drainer(
        adapters,
        engine,
        on_written=written,
        on_batch=metrics.observe_batch,
        on_identified=payments.link_identified,  # payments stored before their visitor's identify
    )
    drainer.start()
    task = asyncio.create_task(worker.start())
    log.info("worker started", concurrency=concurrency, jobs=sorted(JOBS), consumer=drainer.consumer)
    await asyncio.wait([task, asyncio.create_task(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
    log.info("worker stopping")
    await drainer.stop()
    await worker.stop()
    await engine.dispose()
    await adapters.close()

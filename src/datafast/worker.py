"""``datafast worker``: runs background jobs from the Valkey queue (scaled mode)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from saq import Worker

from datafast.jobs import JOBS
from datafast.lib.adapters import create_adapters
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

    worker = Worker(
        queue.saq,
        functions=list(JOBS.items()),
        concurrency=concurrency,
        startup=startup,
        # SAQ waits the whole grace period at shutdown (its pollers never finish early): keep it short.
        shutdown_grace_period_s=5,
    )
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    task = asyncio.create_task(worker.start())
    log.info("worker started", concurrency=concurrency, jobs=sorted(JOBS))
    await asyncio.wait([task, asyncio.create_task(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
    log.info("worker stopping")
    await worker.stop()
    await adapters.close()

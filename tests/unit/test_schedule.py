"""Embedded mode's cron: jobs are queued in-process at their cron times."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from datafast.jobs import JOBS, SCHEDULE
from datafast.lib.queue import InProcessQueue, run_schedule


async def test_scheduled_jobs_are_queued_at_their_cron_times() -> None:
    runs: list[float] = []
    twice = asyncio.Event()

    async def tick(ctx: dict[str, Any]) -> None:
        runs.append(time.time())
        if len(runs) >= 2:
            twice.set()

    queue = InProcessQueue({"tick": tick}, {})
    task = asyncio.create_task(run_schedule(queue, [("tick", "* * * * * *")]))  # every second
    try:
        await asyncio.wait_for(twice.wait(), timeout=10)
    finally:
        task.cancel()
    assert len(runs) >= 2
    assert all(abs(at - round(at)) < 0.5 for at in runs)  # on the second, as cron says
    assert 0.5 < runs[1] - runs[0] < 1.5


def test_every_scheduled_job_is_a_known_job() -> None:
    assert {name for name, _ in SCHEDULE} <= set(JOBS)
    assert dict(SCHEDULE) == {
        "weekly_reports": "0 7 * * 1",
        "monthly_reports": "0 7 1 * *",
        "spike_alerts": "*/5 * * * *",
        "billing_notices": "0 * * * *",
        "plan_retention": "17 3 * * *",
        "local_days": "*/5 * * * *",
        "rates_refresh": "20 16 * * *",
    }

"""Every background job DataFast knows, by name. Domains add theirs here."""

from __future__ import annotations

import os
from typing import Any

from datafast.domain.analytics.jobs import LOCAL_DAYS, LOCAL_DAYS_CRON, local_days
from datafast.domain.billing.notices import BILLING_NOTICES, NOTICES_CRON, billing_notices
from datafast.domain.imports.jobs import RUN_IMPORT, import_job
from datafast.domain.ingest.jobs import DRAIN, drain
from datafast.domain.reports.jobs import SEND_MAIL, WEEKLY_CRON, WEEKLY_REPORTS, send_mail, weekly_reports
from datafast.lib.queue import JobFunction

__all__ = ("JOBS", "SCHEDULE")


async def ping(ctx: dict[str, Any], **_: Any) -> dict[str, Any]:
    """Answer from whichever process runs jobs: proves a worker is consuming the queue."""
    return {"pong": True, "pid": os.getpid()}


JOBS: dict[str, JobFunction] = {
    "ping": ping,
    DRAIN: drain,
    SEND_MAIL: send_mail,
    WEEKLY_REPORTS: weekly_reports,
    BILLING_NOTICES: billing_notices,
    LOCAL_DAYS: local_days,
    RUN_IMPORT: import_job,
}

SCHEDULE: list[tuple[str, str]] = [
    (WEEKLY_REPORTS, WEEKLY_CRON),
    (BILLING_NOTICES, NOTICES_CRON),
    (LOCAL_DAYS, LOCAL_DAYS_CRON),
]
"""Jobs run on a cron (UTC): by ``datafast worker`` in scaled mode, in the serving process embedded."""

"""Every background job DataFast knows, by name. Domains add theirs here."""

from __future__ import annotations

import os
from typing import Any

from datafast.domain.analytics.jobs import LOCAL_DAYS, LOCAL_DAYS_CRON, local_days
from datafast.domain.billing.notices import BILLING_NOTICES, NOTICES_CRON, billing_notices
from datafast.domain.billing.retention import PLAN_RETENTION, PLAN_RETENTION_CRON, plan_retention
from datafast.domain.imports.jobs import RUN_IMPORT, import_job
from datafast.domain.ingest.jobs import DRAIN, drain
from datafast.domain.reports.alerts import (
    PAYMENT_ALERT,
    SEND_WEBHOOK,
    SPIKE_ALERTS,
    SPIKE_CRON,
    payment_alert,
    send_webhook,
    spike_alerts,
)
from datafast.domain.reports.jobs import (
    MONTHLY_CRON,
    MONTHLY_REPORTS,
    SEND_MAIL,
    WEEKLY_CRON,
    WEEKLY_REPORTS,
    monthly_reports,
    send_mail,
    weekly_reports,
)
from datafast.domain.revenue.history import HISTORY, revenue_history
from datafast.domain.revenue.rates import RATES_CRON, RATES_REFRESH, rates_refresh
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
    MONTHLY_REPORTS: monthly_reports,
    PAYMENT_ALERT: payment_alert,
    SEND_WEBHOOK: send_webhook,
    SPIKE_ALERTS: spike_alerts,
    BILLING_NOTICES: billing_notices,
    PLAN_RETENTION: plan_retention,
    LOCAL_DAYS: local_days,
    RUN_IMPORT: import_job,
    HISTORY: revenue_history,
    RATES_REFRESH: rates_refresh,
}

SCHEDULE: list[tuple[str, str]] = [
    (WEEKLY_REPORTS, WEEKLY_CRON),
    (MONTHLY_REPORTS, MONTHLY_CRON),
    (SPIKE_ALERTS, SPIKE_CRON),
    (BILLING_NOTICES, NOTICES_CRON),
    (PLAN_RETENTION, PLAN_RETENTION_CRON),
    (LOCAL_DAYS, LOCAL_DAYS_CRON),
    (RATES_REFRESH, RATES_CRON),
]
"""Jobs run on a cron (UTC): by ``datafast worker`` in scaled mode, in the serving process embedded."""

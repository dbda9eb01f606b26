"""Every background job DataFast knows, by name. Domains add theirs here."""

from __future__ import annotations

import os
from typing import Any

from datafast.domain.billing.notices import BILLING_NOTICES, billing_notices
from datafast.domain.ingest.jobs import DRAIN, drain
from datafast.domain.reports.jobs import SEND_MAIL, WEEKLY_REPORTS, send_mail, weekly_reports
from datafast.lib.queue import JobFunction

__all__ = ("JOBS",)


async def ping(ctx: dict[str, Any], **_: Any) -> dict[str, Any]:
    """Answer from whichever process runs jobs: proves a worker is consuming the queue."""
    return {"pong": True, "pid": os.getpid()}


JOBS: dict[str, JobFunction] = {
    "ping": ping,
    DRAIN: drain,
    SEND_MAIL: send_mail,
    WEEKLY_REPORTS: weekly_reports,
    BILLING_NOTICES: billing_notices,
}

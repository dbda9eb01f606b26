"""Mail jobs: run by ``datafast worker`` through SAQ (retried on failure), or in-process embedded.

- ``send_mail``: one message; a failed send raises, so SAQ retries it (``SaqQueue.RETRIES``).
- ``weekly_reports`` (cron, Mondays 07:00 UTC): each member who opted in gets their sites'
  report for the seven days before this Monday, as one ``send_mail`` job each.
- ``monthly_reports`` (cron, the 1st at 07:00 UTC): the same for the calendar month before.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from datafast.db.models import Membership, User, Website
from datafast.domain.accounts.tokens import sign
from datafast.domain.reports.summary import build_monthly_report, build_weekly_report, render_report
from datafast.lib.adapters import Adapters
from datafast.lib.mail import create_mailer
from datafast.log import get_logger

__all__ = (
    "MONTHLY_CRON",
    "MONTHLY_REPORTS",
    "REPORT_KINDS",
    "SEND_MAIL",
    "WEEKLY_CRON",
    "WEEKLY_REPORTS",
    "monthly_reports",
    "send_mail",
    "unsubscribe_token",
    "weekly_reports",
)

log = get_logger(__name__)

SEND_MAIL = "send_mail"
WEEKLY_REPORTS = "weekly_reports"
WEEKLY_CRON = "0 7 * * 1"
MONTHLY_REPORTS = "monthly_reports"
MONTHLY_CRON = "0 7 1 * *"


async def send_mail(
    ctx: dict[str, Any],
    *,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    adapters: Adapters = ctx["adapters"]
    await create_mailer(adapters.settings).send(to, subject, text, html, headers)


REPORT_KINDS = ("weekly", "monthly")


def unsubscribe_token(secret_key: str, membership_id: str, kind: str = "weekly") -> str:
    return f"{membership_id}.{sign(secret_key, f'unsubscribe-{kind}', membership_id)}"


def _until(end: str | None) -> datetime:
    if end:
        return datetime.fromisoformat(end)
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def weekly_reports(ctx: dict[str, Any], *, end: str | None = None) -> list[str]:
    """Queue this week's reports; ``end`` (ISO, default today 00:00 UTC) closes the seven days.
    Returns ``"<email> <site domain>"`` of each report queued."""
    return await _queue_reports(ctx, "weekly", _until(end))


async def monthly_reports(ctx: dict[str, Any], *, end: str | None = None) -> list[str]:
    """Queue last month's reports: the calendar month before ``end`` (ISO, default today)."""
    return await _queue_reports(ctx, "monthly", _until(end))


async def _queue_reports(ctx: dict[str, Any], kind: str, until: datetime) -> list[str]:
    adapters: Adapters = ctx["adapters"]
    engine: AsyncEngine = ctx["engine"]
    settings = adapters.settings
    opted_in = Membership.weekly_report if kind == "weekly" else Membership.monthly_report
    build = build_weekly_report if kind == "weekly" else build_monthly_report
    sent: list[str] = []
    async with AsyncSession(engine, expire_on_commit=False) as db:
        rows = (
            await db.execute(
                select(Membership.id, User.email, Website)
                .join(User, User.id == Membership.user_id)
                .join(Website, Website.id == Membership.website_id)
                .where(opted_in.is_(True))
                .order_by(Website.id)
            )
        ).all()
        reports: dict[Any, Any] = {}
        for membership_id, email, website in rows:
            if website.id not in reports:
                reports[website.id] = await build(db, adapters.event_store, website, until)
            unsubscribe = f"{settings.base_url}/api/v1/notifications/unsubscribe?" + urlencode(
                {"kind": kind, "token": unsubscribe_token(settings.secret_key, str(membership_id), kind)}
            )
            subject, text, page = render_report(
                reports[website.id], f"{settings.base_url}/sites/{website.id}", unsubscribe
            )
            await adapters.queue.enqueue(
                SEND_MAIL,
                to=email,
                subject=subject,
                text=text,
                html=page,
                headers={
                    "List-Unsubscribe": f"<{unsubscribe}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
            )
            sent.append(f"{email} {website.domain}")
    log.info("reports queued", kind=kind, count=len(sent))
    return sent

"""Alerts: a mail (and a chat message) for each new payment, and when traffic spikes.

- **Payments**: when a webhook or the payments API stores new money, :class:`PaymentAlerts`
  queues one ``payment_alert`` job per site. It mails the members who opted in
  (``Membership.payment_alerts``) and posts to the site's chat webhook. Payments older than
  :data:`FRESH` (an import of history, a late redelivery) alert no one.
- **Traffic spikes** (cron every 5 minutes): a site whose current visitors (the dashboard's: the
  last 5 minutes) reach its ``spike_threshold`` gets one alert — mail to the members who opted in
  (``Membership.spike_alerts``) and its chat webhook — then none for :data:`SPIKE_QUIET`.
- **Chat webhooks**: a Slack or Discord incoming-webhook URL per site (Slack's ``{"text": …}``;
  Discord's ``{"content": …}``), one ``send_webhook`` job per message, retried by SAQ like mail.
  Only ``https`` URLs on the hosts of ``ALERT_WEBHOOK_HOSTS`` are accepted: the server posts to
  them, so a site admin must not point it inside the operator's network.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from datafast.db.models import Membership, User, Website
from datafast.domain.reports.jobs import SEND_MAIL
from datafast.domain.reports.summary import money
from datafast.domain.revenue.store import PaymentRow
from datafast.errors import InvalidInput
from datafast.lib.adapters import Adapters
from datafast.lib.queue import JobQueue
from datafast.log import get_logger

__all__ = (
    "FRESH",
    "PAYMENT_ALERT",
    "SEND_WEBHOOK",
    "SPIKE_ALERTS",
    "SPIKE_CRON",
    "SPIKE_QUIET",
    "PaymentAlerts",
    "check_webhook_url",
    "payment_alert",
    "send_webhook",
    "spike_alerts",
)

log = get_logger(__name__)

PAYMENT_ALERT = "payment_alert"
SEND_WEBHOOK = "send_webhook"
SPIKE_ALERTS = "spike_alerts"
SPIKE_CRON = "*/5 * * * *"
FRESH = timedelta(hours=24)
"""A payment older than this when stored is history, not news: no alert."""
SPIKE_QUIET = timedelta(hours=12)
"""At most one spike alert per site in this long."""
CURRENT = timedelta(minutes=5)
"""Current visitors: the last five minutes, as on the dashboard."""

_CURRENT_VISITORS = (
    "SELECT website_id, uniqExact(visitor_id) FROM events"
    " WHERE website_id IN {sites:Array(UUID)} AND timestamp >= {since:DateTime64(3, 'UTC')}"
    " GROUP BY website_id"
)
_CURRENT_SOURCES = (
    "SELECT referrer_source, uniqExact(visitor_id) AS v FROM events"
    " WHERE website_id = {site:UUID} AND timestamp >= {since:DateTime64(3, 'UTC')}"
    " GROUP BY referrer_source ORDER BY v DESC, referrer_source LIMIT 3"
)


def check_webhook_url(url: str, hosts: Iterable[str]) -> str:
    """The URL if DataFast may post alerts to it, else :class:`InvalidInput` naming why."""
    allowed = {h.lower() for h in hosts}
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise InvalidInput("alert_webhook_url must be an https:// URL (a Slack or Discord incoming webhook)")
    if host not in allowed:
        raise InvalidInput(
            f"alert_webhook_url must be on one of {', '.join(sorted(allowed))}"
            " (the operator's ALERT_WEBHOOK_HOSTS)"
        )
    if parts.scheme == "http" and not _loopback(host):
        raise InvalidInput("alert_webhook_url must use https://")
    return url.strip()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def chat_body(url: str, text: str) -> dict[str, str]:
    """Discord's incoming webhooks take ``content``; Slack's (and Mattermost's) ``text``."""
    host = (urlsplit(url).hostname or "").lower()
    return {"content": text} if "discord" in host else {"text": text}


async def send_webhook(ctx: dict[str, Any], *, url: str, text: str) -> None:
    """Post one message; a failure raises, so SAQ retries it."""
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        response = await client.post(url, json=chat_body(url, text))
    response.raise_for_status()


async def _members(db: AsyncSession, website_id: uuid.UUID, opted_in: Any) -> list[str]:
    rows = await db.scalars(
        select(User.email)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.website_id == website_id, opted_in.is_(True))
        .order_by(User.email)
    )
    return list(rows)


async def _notify(
    queue: JobQueue, emails: list[str], webhook: str | None, subject: str, text: str
) -> list[str]:
    for email in emails:
        await queue.enqueue(SEND_MAIL, to=email, subject=subject, text=text)
    if webhook:
        await queue.enqueue(SEND_WEBHOOK, url=webhook, text=f"{subject}\n{text}")
    return emails + ([webhook] if webhook else [])


class PaymentAlerts:
    """``PaymentService(on_new=…)``: queue a ``payment_alert`` for the new, fresh payments."""

    def __init__(self, queue: JobQueue, clock: Any = None) -> None:
        self.queue = queue
        self.clock = clock or (lambda: datetime.now(UTC))

    async def __call__(self, rows: list[PaymentRow]) -> None:
        oldest = self.clock() - FRESH
        fresh = [r for r in rows if r.kind == "payment" and r.amount_site > 0 and r.timestamp >= oldest]
        by_site: dict[str, list[dict[str, Any]]] = {}
        for row in fresh:
            by_site.setdefault(row.website_id, []).append(
                {
                    "amount": row.amount_site,
                    "currency": row.site_currency,
                    "provider": row.provider,
                    "renewal": bool(row.is_renewal),
                }
            )
        for site, payments in by_site.items():
            await self.queue.enqueue(PAYMENT_ALERT, website_id=site, payments=payments)


async def payment_alert(ctx: dict[str, Any], *, website_id: str, payments: list[dict[str, Any]]) -> list[str]:
    """Mail the opted-in members and post to the site's webhook; returns who was told."""
    adapters: Adapters = ctx["adapters"]
    engine: AsyncEngine = ctx["engine"]
    async with AsyncSession(engine) as db:
        website = await db.get(Website, uuid.UUID(website_id))
        if website is None:
            return []
        emails = await _members(db, website.id, Membership.payment_alerts)
        if not emails and not website.alert_webhook_url:
            return []
        lines = [
            f"{money(p['amount'], p['currency'])} from {p['provider']}"
            + (" (renewal)" if p.get("renewal") else "")
            for p in payments
        ]
        total = money(sum(p["amount"] for p in payments), payments[0]["currency"])
        subject = (
            f"{website.domain}: new payment {total}"
            if len(payments) == 1
            else f"{website.domain}: {len(payments)} new payments, {total}"
        )
        text = "\n".join([*lines, "", f"Dashboard: {adapters.settings.base_url}/sites/{website.id}"])
        return await _notify(adapters.queue, emails, website.alert_webhook_url, subject, text)


async def spike_alerts(ctx: dict[str, Any], *, now: str | None = None) -> list[str]:
    """Alert the sites whose current visitors reached their threshold; returns their domains."""
    adapters: Adapters = ctx["adapters"]
    engine: AsyncEngine = ctx["engine"]
    moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
    since = moment - CURRENT
    alerted: list[str] = []
    async with AsyncSession(engine, expire_on_commit=False) as db:
        sites = list(
            await db.scalars(
                select(Website).where(
                    Website.spike_threshold.is_not(None),
                    (Website.spike_alerted_at.is_(None)) | (Website.spike_alerted_at <= moment - SPIKE_QUIET),
                )
            )
        )
        if not sites:
            return []
        result = await adapters.event_store.query(
            _CURRENT_VISITORS, {"sites": [str(s.id) for s in sites], "since": since}
        )
        current = {str(site): int(count) for site, count in result.result_rows}
        for website in sites:
            visitors = current.get(str(website.id), 0)
            if website.spike_threshold is None or visitors < website.spike_threshold:
                continue
            emails = await _members(db, website.id, Membership.spike_alerts)
            if emails or website.alert_webhook_url:
                rows = (
                    await adapters.event_store.query(
                        _CURRENT_SOURCES, {"site": str(website.id), "since": since}
                    )
                ).result_rows
                sources = ", ".join(f"{name or 'Direct'} ({count})" for name, count in rows)
                subject = f"{website.domain}: traffic spike, {visitors} current visitors"
                text = "\n".join(
                    [
                        f"{visitors} visitors in the last 5 minutes"
                        f" (your alert is at {website.spike_threshold}).",
                        f"Top sources: {sources or 'none'}",
                        "",
                        f"Dashboard: {adapters.settings.base_url}/sites/{website.id}",
                    ]
                )
                await _notify(adapters.queue, emails, website.alert_webhook_url, subject, text)
            website.spike_alerted_at = moment
            alerted.append(website.domain)
        await db.commit()
    if alerted:
        log.info("traffic spike alerts", sites=alerted)
    return alerted

"""Hosted mode: each plan's data retention (``retention_days`` in ``BILLING_PLANS``).

Every night (``plan_retention``, 03:17 UTC) the traffic of each account's sites older than its
plan allows is deleted from the tables ``DATA_RETENTION_DAYS`` expires (events, sessions,
rollups; payments are kept), so the dashboard over the retained days still adds up. An account
without a billing row (made before hosted mode) has the first plan, like its trial. A plan
without retention (0), or one longer than ``DATA_RETENTION_DAYS``, leaves it to the table TTLs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from datafast.db.models import BillingAccount, Membership, Role
from datafast.db.retention import expire_sites
from datafast.lib.adapters import Adapters
from datafast.log import get_logger

__all__ = ("PLAN_RETENTION", "PLAN_RETENTION_CRON", "plan_retention")

log = get_logger(__name__)

PLAN_RETENTION = "plan_retention"
PLAN_RETENTION_CRON = "17 3 * * *"


async def plan_retention(ctx: dict[str, Any], *, now: str | None = None) -> dict[str, int]:
    """Apply every plan's retention; returns ``{"days": sites}`` of what it expired."""
    adapters: Adapters = ctx["adapters"]
    billing = adapters.settings.billing
    if not billing.enabled:
        return {}
    engine: AsyncEngine = ctx["engine"]
    moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
    table_ttl = adapters.settings.data_retention_days
    plans = {plan.name: plan.retention_days for plan in billing.plans}
    default = billing.plans[0].retention_days
    async with AsyncSession(engine) as db:
        rows = await db.execute(
            select(Membership.website_id, BillingAccount.plan)
            .outerjoin(BillingAccount, BillingAccount.user_id == Membership.user_id)
            .where(Membership.role == Role.OWNER)
        )
        by_days: dict[int, list[str]] = {}
        for website_id, plan in rows:
            days = plans.get(plan, default) if plan is not None else default
            if days and (not table_ttl or days < table_ttl):
                by_days.setdefault(days, []).append(str(website_id))
    cutoffs = {site: moment - timedelta(days=days) for days, sites in by_days.items() for site in sites}
    await expire_sites(adapters.event_store, cutoffs)
    expired = {str(days): len(sites) for days, sites in by_days.items()}
    if expired:
        log.info("plan retention applied", sites_by_days=expired)
    return expired

"""The ``billing_notices`` job (hourly cron in ``datafast worker``): mails an account once when its
trial ends within three days, and once per billing period at 80% and at 100% of its allowance.

What was mailed is stored on the account (committed before the mails are queued), so a rerun
sends nothing new.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from datafast.db.models import BillingAccount, User
from datafast.domain.billing.accounts import Status, plan_of, sites_owned
from datafast.domain.billing.mails import notice_mail
from datafast.domain.billing.service import current_period, note_usage
from datafast.domain.billing.usage import events_in_period
from datafast.lib.adapters import Adapters

__all__ = ("BILLING_NOTICES", "NOTICES_CRON", "billing_notices")

BILLING_NOTICES = "billing_notices"
NOTICES_CRON = "0 * * * *"
TRIAL_WARNING = timedelta(days=3)


async def billing_notices(ctx: dict[str, Any], *, now: str | None = None) -> list[str]:
    """Returns ``"<email> <kind>"`` of each mail queued."""
    adapters: Adapters = ctx["adapters"]
    engine: AsyncEngine = ctx["engine"]
    settings = adapters.settings
    billing = settings.billing
    if not billing.enabled:
        return []
    moment = datetime.fromisoformat(now) if now else datetime.now(UTC)
    mails: list[tuple[str, str]] = []
    async with AsyncSession(engine, expire_on_commit=False) as db:
        rows = (
            await db.execute(select(BillingAccount, User).join(User, User.id == BillingAccount.user_id))
        ).all()
        for account, user in rows:
            ends = account.trial_ends_at
            if (
                account.status == Status.TRIALING
                and not account.trial_notice_sent
                and ends is not None
                and moment < ends <= moment + TRIAL_WARNING
            ):
                account.trial_notice_sent = True
                mails.append((user.email, "trial_ending"))
            plan = plan_of(billing, account)
            start, _ = current_period(account, moment)
            if account.usage_notice_period != start:
                account.usage_notice_period, account.usage_notice_level = start, 0
            if not plan.events:
                continue
            events = await events_in_period(
                adapters.event_store, await sites_owned(db, user.id), start, moment
            )
            note_usage(account, plan, events, start, moment)
            level = 100 if events >= plan.events else 80 if events * 100 >= plan.events * 80 else 0
            if level > account.usage_notice_level:
                account.usage_notice_level = level
                mails.append((user.email, f"usage_{level}"))
        await db.commit()
    for email, kind in mails:
        subject, text = notice_mail(kind, settings.base_url)
        await adapters.queue.enqueue("send_mail", to=email, subject=subject, text=text)
    return [f"{email} {kind}" for email, kind in mails]

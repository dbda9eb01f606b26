"""Recording subscription lifecycle states (the repository of ``subscription_states``).

Each provider event about a subscription becomes one row: the subscription as that event
describes it, at the provider's event time, with its MRR (the period's amount normalised to a
month; 0 unless it pays) in its own currency and in the site's currency at that day's rate. A
redelivered event writes the same key again (``ReplacingMergeTree``), and out-of-order events
sort by the provider's time, so the timeline converges whatever the order (see the migration
``0008_subscriptions``). The visitor is not decided here: reports take the subscription's first
payment's visitor, else the ``datafast_visitor_id`` in the subscription's own metadata.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from datafast.domain.revenue.currency import from_rate
from datafast.domain.revenue.providers import SubscriptionState
from datafast.domain.revenue.providers._base import LIVE, MONTHS_PER
from datafast.lib.eventstore import EventStore

__all__ = ("COLUMNS", "SubscriptionStore", "interval_between")

COLUMNS = (
    "website_id",
    "provider",
    "subscription_id",
    "state_at",
    "event_id",
    "version",
    "status",
    "plan",
    "customer_id",
    "currency",
    "amount",
    "interval",
    "interval_count",
    "mrr",
    "mrr_site",
    "site_currency",
    "started_at",
    "trial_start",
    "trial_end",
    "canceled_at",
    "ended_at",
    "visitor_id",
    "session_id",
)


def interval_between(start: datetime, renews_at: datetime) -> tuple[str, int]:
    """The billing interval a period from ``start`` to ``renews_at`` is: whole days, weeks,
    months or years, whichever it is closest to (a month is 28 to 31 days)."""
    days = (_aware(renews_at) - _aware(start)).total_seconds() / 86400
    if days < 5:
        return "day", max(1, round(days))
    if days < 26:
        return "week", max(1, round(days / 7))
    months = max(1, round(days / 30.44))
    return ("year", months // 12) if months % 12 == 0 else ("month", months)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def state_row(
    site: uuid.UUID, provider: str, state: SubscriptionState, site_currency: str, rate: float | None
) -> list[Any]:
    """The row for one state; ``rate`` is 1 unit of the state's currency in the site's currency."""
    mrr = state.mrr
    if state.currency == site_currency:
        mrr_site = mrr
    else:
        mrr_site = from_rate(mrr, state.currency, site_currency, rate) if rate is not None else 0
    return [
        site,
        provider,
        state.subscription_id,
        state.at,
        state.event_id,
        time.time_ns(),
        state.status,
        state.plan,
        state.customer_id,
        state.currency,
        state.amount,
        state.interval,
        state.interval_count,
        mrr,
        mrr_site,
        site_currency,
        state.started_at,
        state.trial_start,
        state.trial_end,
        state.canceled_at,
        state.ended_at,
        state.visitor_id,
        state.session_id,
    ]


class SubscriptionStore:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def paid_interval(
        self, site: uuid.UUID, provider: str, subscription_id: str
    ) -> tuple[str, int] | None:
        """The billing interval of the subscription's latest recorded state that had a price."""
        result = await self.store.query(
            "SELECT interval, interval_count FROM subscription_states FINAL"
            " WHERE website_id = {site:UUID} AND provider = {provider:String}"
            " AND subscription_id = {sub:String} AND amount > 0 ORDER BY state_at DESC LIMIT 1",
            parameters={"site": str(site), "provider": provider, "sub": subscription_id},
        )
        if not result.result_rows:
            return None
        interval, count = result.result_rows[0]
        return str(interval), int(count)

    async def reprice(
        self, site: uuid.UUID, provider: str, subscription_id: str, interval: tuple[str, int]
    ) -> int:
        """Give the subscription's priced states this billing interval; returns how many changed.

        A price-less provider's interval is known for sure only from a state sent with a payment
        (its ``renews_at`` one period after it); states that came before it, out of order, had
        to guess."""
        result = await self.store.query(
            f"SELECT {', '.join(COLUMNS)} FROM subscription_states FINAL"  # noqa: S608 - fixed names
            " WHERE website_id = {site:UUID} AND provider = {provider:String}"
            " AND subscription_id = {sub:String} AND amount > 0",
            parameters={"site": str(site), "provider": provider, "sub": subscription_id},
        )
        months = MONTHS_PER.get(interval[0], 1) * max(interval[1], 1)
        changed = []
        for values in result.result_rows:
            row = dict(zip(COLUMNS, values, strict=True))
            if (row["interval"], int(row["interval_count"])) == interval:
                continue
            mrr = round(row["amount"] / months) if row["status"] in LIVE else 0
            # The site-currency figure keeps the rate it was converted at.
            mrr_site = (
                mrr
                if row["currency"] == row["site_currency"]
                else (round(row["mrr_site"] * mrr / row["mrr"]) if row["mrr"] else 0)
            )
            row.update(
                interval=interval[0],
                interval_count=interval[1],
                mrr=mrr,
                mrr_site=mrr_site,
                version=time.time_ns(),
            )
            changed.append([row[c] for c in COLUMNS])
        await self.insert(changed)
        return len(changed)

    async def insert(self, rows: list[list[Any]]) -> None:
        if rows:
            await self.store.insert("subscription_states", rows, column_names=COLUMNS)

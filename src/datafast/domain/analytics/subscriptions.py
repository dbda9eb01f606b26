"""Subscription metrics: MRR and its movements, subscribers, trials, churn, ARPU and LTV by month,
overall and by the first-touch acquisition source of each subscriber.

Definitions (months are calendar months in the site's timezone; amounts in the site's currency,
minor units):

- A subscription's **MRR at an instant** is the ``mrr_site`` of its last state
  (``subscription_states``) before that instant: the period's price normalised to a month while
  it is ``active`` or ``past_due``, else 0 (trials, paused and ended subscriptions pay nothing).
- **MRR** of a month is the sum at its end. Comparing each subscription's MRR at the start
  (``a``) and the end (``b``) of the month: **new** ``b`` when ``a = 0 < b`` and it never paid
  before; **reactivation** ``b`` when ``a = 0 < b`` and it had paid before; **expansion**
  ``b - a`` when ``0 < a < b``; **contraction** ``a - b`` when ``0 < b < a``; **churned** ``a``
  when ``a > 0 = b``. So ``mrr = mrr_start + new + reactivation + expansion - contraction - churned``.
- **Active subscribers**: paying at the month's end. **Churn rate**: subscribers churned in the
  month / subscribers paying at its start. **ARPU**: MRR / active subscribers.
- **Trials**: subscriptions whose trial started in the month; **trial conversions**: those of
  them that have paid since (any state with MRR after the trial).
- **Revenue**: the month's net payments (refunds subtracted) of the subscriptions.
  **LTV (realised)**: net payments of the subscriptions up to the month's end / subscriptions
  that had paid by then. **LTV (projected)**: ARPU / churn rate (null without churn).
- **Acquisition**: a subscription's visitor is its first payment's (else the
  ``datafast_visitor_id`` of its own metadata); its source, channel, campaign, landing page and
  country are those of the visit the ``model`` credits: ``first_touch`` (default) the visitor's
  first visit ever; ``first``, ``last``, ``last_non_direct`` as in the Stats API, over the visits
  started within ``lookback_days`` before the subscription's first payment (else its first
  state). No visitor, or no visit in the window → ``null``.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec

from datafast.domain.analytics.catalog import SESSION_COLUMNS
from datafast.lib.eventstore import EventStore

__all__ = (
    "DIMENSIONS",
    "MODELS",
    "MonthMetrics",
    "SubscriptionGroup",
    "SubscriptionQuery",
    "SubscriptionReport",
    "month_range",
    "subscription_report",
)

_ACQUISITION = ("source", "channel", "utm_source", "utm_medium", "utm_campaign", "entry_page", "country")
DIMENSIONS: Mapping[str, str] = {
    ("landing_page" if name == "entry_page" else name): SESSION_COLUMNS[name] for name in _ACQUISITION
}
"""Acquisition dimensions → the ``sessions`` column of the subscriber's first visit (the catalog's;
its entry page is called the landing page here)."""

MAX_MONTHS = 60
MODELS = ("first_touch", "first", "last", "last_non_direct")
CLOCK_SKEW = timedelta(seconds=60)
"""A visit may start this long after the payment and still count (the Stats API's rule)."""


class MonthMetrics(msgspec.Struct):
    month: str
    """``YYYY-MM``."""
    mrr: int = 0
    mrr_start: int = 0
    new_mrr: int = 0
    expansion_mrr: int = 0
    contraction_mrr: int = 0
    churned_mrr: int = 0
    reactivation_mrr: int = 0
    net_new_mrr: int = 0
    active_subscribers: int = 0
    new_subscribers: int = 0
    churned_subscribers: int = 0
    reactivated_subscribers: int = 0
    trials: int = 0
    trial_conversions: int = 0
    trial_conversion_rate: float | None = None
    churn_rate: float | None = None
    arpu: float | None = None
    revenue: int = 0
    ltv: float | None = None
    """Realised: net payments so far per subscriber who has paid."""
    ltv_projected: float | None = None


class SubscriptionGroup(msgspec.Struct):
    value: str | None
    subscribers: int
    """Subscriptions in this group that have ever paid (or trialed) up to the last month."""
    months: list[MonthMetrics]


class SubscriptionReport(msgspec.Struct):
    currency: str
    dimension: str | None
    months: list[MonthMetrics]
    breakdown: list[SubscriptionGroup] = msgspec.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SubscriptionQuery:
    website_id: uuid.UUID
    currency: str
    timezone: str
    first_month: date
    last_month: date
    dimension: str | None = None
    model: str = "first_touch"
    lookback_days: int = 30


def month_range(first: date, last: date) -> list[date]:
    """The first day of every month from ``first``'s to ``last``'s, both included."""
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(date(year, month, 1))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@dataclass(slots=True)
class _Subscription:
    key: tuple[str, str]
    times: list[datetime] = field(default_factory=list)
    mrr: list[int] = field(default_factory=list)
    trial_start: datetime | None = None
    visitor: str = ""
    payments: list[tuple[datetime, int]] = field(default_factory=list)
    first_payment: datetime | None = None

    @property
    def anchor(self) -> datetime:
        """When the attribution window ends: the first payment, else the first state."""
        return self.first_payment or self.times[0]

    def mrr_at(self, at: datetime) -> int:
        """MRR of the last state strictly before ``at``."""
        index = bisect_left(self.times, at)
        return self.mrr[index - 1] if index else 0

    def paid_before(self, at: datetime) -> bool:
        index = bisect_left(self.times, at)
        return any(value > 0 for value in self.mrr[:index])

    def first_paid(self) -> datetime | None:
        return next((t for t, value in zip(self.times, self.mrr, strict=True) if value > 0), None)


async def _load(store: EventStore, query: SubscriptionQuery) -> list[_Subscription]:
    site = str(query.website_id)
    states = await store.query(
        "SELECT provider, subscription_id, state_at, mrr_site, trial_start, visitor_id "
        "FROM subscription_states FINAL WHERE website_id = {site:UUID} "
        "ORDER BY provider, subscription_id, state_at, event_id",
        parameters={"site": site},
    )
    subs: dict[tuple[str, str], _Subscription] = {}
    for provider, sub_id, at, mrr, trial_start, visitor in states.result_rows:
        sub = subs.setdefault((str(provider), str(sub_id)), _Subscription((str(provider), str(sub_id))))
        sub.times.append(_utc(at))
        sub.mrr.append(int(mrr))
        if trial_start is not None and sub.trial_start is None:
            sub.trial_start = _utc(trial_start)
        if visitor and not sub.visitor:
            sub.visitor = str(visitor)
    if not subs:
        return []
    payments = await store.query(
        "SELECT provider, subscription_id, timestamp, amount_site, kind, visitor_id, is_renewal "
        "FROM payments FINAL WHERE website_id = {site:UUID} AND subscription_id != '' "
        "ORDER BY timestamp",
        parameters={"site": site},
    )
    first_visitor: dict[tuple[str, str], str] = {}
    for provider, sub_id, at, amount, kind, visitor, _renewal in payments.result_rows:
        found = subs.get((str(provider), str(sub_id)))
        if found is None:
            continue
        found.payments.append((_utc(at), int(amount)))
        if kind == "payment" and found.first_payment is None:
            found.first_payment = _utc(at)
        if kind == "payment" and visitor and (str(provider), str(sub_id)) not in first_visitor:
            first_visitor[(str(provider), str(sub_id))] = str(visitor)
    for key, visitor in first_visitor.items():
        subs[key].visitor = visitor  # the first payment's visitor wins over the metadata's
    return list(subs.values())


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def _visits(
    store: EventStore, site: uuid.UUID, column: str, visitors: list[str]
) -> dict[str, list[tuple[datetime, str, str]]]:
    """Each visitor's visits, oldest first: (start, channel, the dimension's value)."""
    if not visitors:
        return {}
    result = await store.query(
        f"SELECT visitor_id, started_at, channel, {column} FROM sessions FINAL "  # noqa: S608 - column from DIMENSIONS
        "WHERE website_id = {site:UUID} AND sign = 1 AND visitor_id IN {visitors:Array(String)} "
        "ORDER BY visitor_id, started_at, session_id",
        parameters={"site": str(site), "visitors": visitors},
    )
    visits: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
    for visitor, started, channel, value in result.result_rows:
        visits[str(visitor)].append((_utc(started), str(channel), str(value)))
    return visits


def _credited(
    sub: _Subscription, visits: list[tuple[datetime, str, str]], query: SubscriptionQuery
) -> str | None:
    """The dimension's value of the visit the model credits for this subscription."""
    if query.model == "first_touch":
        return visits[0][2] if visits else None
    start = sub.anchor - timedelta(days=query.lookback_days)
    touches = [v for v in visits if start <= v[0] <= sub.anchor + CLOCK_SKEW]
    if not touches:
        return None
    if query.model == "first":
        return touches[0][2]
    if query.model == "last_non_direct":
        touches = [v for v in touches if v[1] != "direct"] or touches
    return touches[-1][2]


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _series(subs: list[_Subscription], bounds: list[datetime], labels: list[str]) -> list[MonthMetrics]:
    out = []
    for index, label in enumerate(labels):
        start, end = bounds[index], bounds[index + 1]
        m = MonthMetrics(month=label)
        paying_start = 0
        ever_paid = 0
        lifetime = 0
        for sub in subs:
            a, b = sub.mrr_at(start), sub.mrr_at(end)
            m.mrr += b
            m.mrr_start += a
            paying_start += a > 0
            m.active_subscribers += b > 0
            if a == 0 < b:
                if sub.paid_before(start):
                    m.reactivation_mrr += b
                    m.reactivated_subscribers += 1
                else:
                    m.new_mrr += b
                    m.new_subscribers += 1
            elif 0 < a < b:
                m.expansion_mrr += b - a
            elif 0 < b < a:
                m.contraction_mrr += a - b
            elif a > 0 == b:
                m.churned_mrr += a
                m.churned_subscribers += 1
            if sub.trial_start is not None and start <= sub.trial_start < end:
                m.trials += 1
                paid = sub.first_paid()
                m.trial_conversions += paid is not None and paid >= sub.trial_start
            m.revenue += sum(amount for at, amount in sub.payments if start <= at < end)
            lifetime += sum(amount for at, amount in sub.payments if at < end)
            first = sub.first_paid()
            ever_paid += first is not None and first < end
        m.net_new_mrr = m.new_mrr + m.reactivation_mrr + m.expansion_mrr - m.contraction_mrr - m.churned_mrr
        m.trial_conversion_rate = _ratio(m.trial_conversions, m.trials)
        m.churn_rate = _ratio(m.churned_subscribers, paying_start)
        m.arpu = _ratio(m.mrr, m.active_subscribers)
        m.ltv = _ratio(lifetime, ever_paid)
        m.ltv_projected = _ratio(m.arpu, m.churn_rate) if m.arpu is not None and m.churn_rate else None
        out.append(m)
    return out


async def subscription_report(store: EventStore, query: SubscriptionQuery) -> SubscriptionReport:
    zone = ZoneInfo(query.timezone)
    months = month_range(query.first_month, query.last_month)
    last = months[-1]
    after = date(last.year + (last.month == 12), last.month % 12 + 1, 1)
    bounds = [datetime(d.year, d.month, 1, tzinfo=zone).astimezone(UTC) for d in [*months, after]]
    labels = [d.strftime("%Y-%m") for d in months]
    subs = await _load(store, query)
    report = SubscriptionReport(
        currency=query.currency, dimension=query.dimension, months=_series(subs, bounds, labels)
    )
    if query.dimension is None:
        return report
    visits = await _visits(
        store, query.website_id, DIMENSIONS[query.dimension], sorted({s.visitor for s in subs if s.visitor})
    )
    groups: dict[str | None, list[_Subscription]] = defaultdict(list)
    for sub in subs:
        groups[_credited(sub, visits.get(sub.visitor, []), query) if sub.visitor else None].append(sub)
    end = bounds[-1]
    report.breakdown = sorted(
        (
            SubscriptionGroup(
                value=value,
                subscribers=sum(1 for s in members if s.times and s.times[0] < end),
                months=_series(members, bounds, labels),
            )
            for value, members in groups.items()
        ),
        key=lambda g: (-g.months[-1].mrr, g.value is None, g.value or ""),
    )
    return report

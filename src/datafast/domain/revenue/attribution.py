"""Revenue attribution: which visits brought the money, by any sessions dimension.

The conversions (payments, refunds and tracker revenue, with the double-count rule) and the
attribution models are defined once in :mod:`datafast.domain.revenue.conversions`, shared with the
Stats API. Here: group the attributed money by one ``sessions`` column of the credited visit
(picked from a fixed table, never from input) and add the visitors of each value. Money with no
visitor, or no visit in the window, is reported with ``value: null`` (unknown source).

The window is bounded (:func:`attribution_window`): ``from`` not before 2000-01-01, ``to`` not
later than a year from now (so "this year" works), at most ``MAX_DAYS`` (1,830) days long;
outside that is a 400.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from datafast.domain.revenue import conversions
from datafast.domain.revenue.conversions import DEFAULT_CLIENT_REVENUE, MODELS, ClientRevenue, MoneyWindow
from datafast.domain.revenue.schemas import AttributionReport, AttributionRow
from datafast.errors import InvalidInput
from datafast.lib.eventstore import EventStore

__all__ = ("DIMENSIONS", "MODELS", "AttributionQuery", "attribution_report", "attribution_window")

DIMENSIONS: Mapping[str, str] = {
    "source": "referrer_source",
    "channel": "channel",
    "referrer": "referrer",
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "entry_page": "entry_page",
    "exit_page": "exit_page",
    "hostname": "hostname",
    "country": "country",
    "region": "region",
    "city": "city",
    "device": "device",
    "browser": "browser",
    "os": "os",
}
"""Attribution dimensions → ``sessions`` columns (a visit's source, landing page, place, device)."""

MAX_ROWS = 500
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=366)
MAX_DAYS = 5 * 366
DEFAULT_DAYS = 30


def _invalid(key: str, message: str) -> InvalidInput:
    return InvalidInput(message, extra={"errors": [{"key": key, "message": message}]})


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def attribution_window(
    date_from: datetime | None, date_to: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """``[from, to)`` of a report: ``to`` defaults to now rounded up to the minute (so repeated
    requests share a cached result), ``from`` to 30 days before ``to``. Raises 400 out of bounds."""
    try:
        if date_to is None:
            end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        else:
            end = _aware(date_to).astimezone(UTC)
        if end > now + MAX_AHEAD:
            raise _invalid("to", "to must not be more than a year from now")
        if end <= EARLIEST:
            raise _invalid("to", f"to must be after {EARLIEST.date().isoformat()}")
        start = (
            _aware(date_from).astimezone(UTC)
            if date_from is not None
            else max(end - timedelta(days=DEFAULT_DAYS), EARLIEST)
        )
    except OverflowError:  # an offset pushing year 1 or 9999 out of range
        raise _invalid("from", "from and to must be dates between 2000 and now") from None
    if start < EARLIEST:
        raise _invalid("from", f"from must not be before {EARLIEST.date().isoformat()}")
    if start >= end:
        raise _invalid("from", "from must be before to")
    if end - start > timedelta(days=MAX_DAYS):
        raise _invalid("from", f"the window is limited to {MAX_DAYS} days")
    return start, end


@dataclass(frozen=True, slots=True)
class AttributionQuery:
    website_id: uuid.UUID
    currency: str
    model: str
    dimension: str
    date_from: datetime
    date_to: datetime
    lookback_days: int = 30
    client_revenue: ClientRevenue = DEFAULT_CLIENT_REVENUE
    """Whether tracker (unverified) revenue counts: the site's policy (see revenue.trust)."""


_REVENUE_SQL = """
WITH {conversions}, {attributed}
SELECT a.key != '' AS linked, if(linked, v.value, '') AS value, {money}
FROM conversions AS c
LEFT JOIN attributed AS a ON a.key = c.key
LEFT JOIN (
    SELECT session_id, any({column}) AS value
    FROM sessions FINAL
    WHERE website_id = {{cv_site:UUID}} AND sign = 1 AND session_id IN (SELECT session_id FROM attributed)
    GROUP BY session_id
) AS v ON v.session_id = a.session_id
GROUP BY linked, value
"""

_VISITORS_SQL = """
SELECT {column} AS value, uniqExact(visitor_id) AS visitors
FROM sessions FINAL
WHERE website_id = {{cv_site:UUID}} AND sign = 1
  AND started_at >= {{cv_from:DateTime64(3, 'UTC')}} AND started_at < {{cv_to:DateTime64(3, 'UTC')}}
GROUP BY value
"""


async def attribution_report(store: EventStore, query: AttributionQuery) -> AttributionReport:
    column = DIMENSIONS[query.dimension]
    window = MoneyWindow(
        website_id=str(query.website_id),
        currency=query.currency,
        start=query.date_from,
        end=query.date_to,
        model=query.model,
        lookback_days=query.lookback_days,
        client=query.client_revenue,
    )
    parameters = conversions.parameters(window)
    sql = _REVENUE_SQL.format(
        conversions=conversions.CONVERSIONS,
        attributed=conversions.attributed(query.model),
        money=conversions.money_columns(),
        column=column,
    )
    money = await store.query(sql, parameters=parameters)
    traffic = await store.query(_VISITORS_SQL.format(column=column), parameters=parameters)
    visitors = {str(value): int(count) for value, count in traffic.result_rows}

    rows: dict[str | None, AttributionRow] = {}
    for linked, value, revenue, new, renewal, refunds, payments, gross, payers in money.result_rows:
        customers = len(payers)
        key = str(value) if linked else None
        seen = visitors.get(key, 0) if key is not None else 0
        rows[key] = AttributionRow(
            value=key,
            revenue=int(revenue),
            new_revenue=int(new),
            renewal_revenue=int(renewal),
            refunds=int(refunds),
            payments=int(payments),
            customers=int(customers),
            visitors=seen,
            conversion_rate=round(int(customers) / seen, 4) if seen else 0.0,
            revenue_per_visitor=round(int(revenue) / seen, 2) if seen else 0.0,
            average_order_value=round(int(gross) / int(payments), 2) if payments else 0.0,
        )
    for value, count in visitors.items():
        if value not in rows:
            rows[value] = AttributionRow(value, 0, 0, 0, 0, 0, 0, count, 0.0, 0.0, 0.0)
    ordered = sorted(rows.values(), key=lambda r: (-r.revenue, -r.visitors, r.value or ""))
    return AttributionReport(
        model=query.model,
        dimension=query.dimension,
        currency=query.currency,
        lookback_days=query.lookback_days,
        date_from=query.date_from,
        date_to=query.date_to,
        rows=ordered[:MAX_ROWS],
    )

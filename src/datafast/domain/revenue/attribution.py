"""Revenue attribution: which visits brought the money, by any sessions dimension.

The one query module for attribution (values bound server-side; the dimension and model
pick column names from fixed tables, never from input).

A conversion is a stored payment or refund (``payments``), plus any tracker event with a
revenue value (``datafast.goal`` with a value, a ``purchase``) whose ``props.transaction_id``
no stored payment carries. That is the double-count rule: a sale reported both by the
tracker and by a provider counts once, as the provider's payment, when the tracker event
carries the provider's transaction id (the order id, checkout session, payment intent or
``POST /api/v1/payments`` transaction_id); a tracker event without one always counts.
Tracker revenue in another currency than the site's is left out (it has no rate of its own).

Each conversion's touches are its visitor's visits that started within ``lookback_days``
before its ``anchor_at`` (the payment time; a renewal's first payment; a refund's original
payment). First touch takes the earliest, last touch the latest, last non-direct the latest
whose channel is not direct (the latest visit when all are direct). Money with no visitor,
or no visit in the window, is reported with ``value: null`` (unknown source).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from datafast.domain.revenue.schemas import AttributionReport, AttributionRow
from datafast.lib.eventstore import EventStore

__all__ = ("DIMENSIONS", "MODELS", "AttributionQuery", "attribution_report")

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

MODELS: Mapping[str, str] = {
    "first": "first_touch",
    "last": "last_touch",
    "last_non_direct": "last_non_direct",
}
MAX_ROWS = 500
CLOCK_SKEW = 60
"""Seconds a visit may start after the payment and still count: the provider's clock and the
visitor's are not the same, and provider timestamps are often whole seconds."""


@dataclass(frozen=True, slots=True)
class AttributionQuery:
    website_id: uuid.UUID
    currency: str
    model: str
    dimension: str
    date_from: datetime
    date_to: datetime
    lookback_days: int = 30


_REVENUE_SQL = """
WITH
conversions AS (
    SELECT payment_key AS key, kind, is_renewal, visitor_id, anchor_at, amount_site AS amount
    FROM payments FINAL
    WHERE website_id = {{site:UUID}}
      AND timestamp >= {{date_from:DateTime64(3, 'UTC')}} AND timestamp < {{date_to:DateTime64(3, 'UTC')}}
    UNION ALL
    SELECT concat('event:', toString(event_id)), 'payment', 0, visitor_id, timestamp, revenue
    FROM events
    WHERE website_id = {{site:UUID}}
      AND timestamp >= {{date_from:DateTime64(3, 'UTC')}} AND timestamp < {{date_to:DateTime64(3, 'UTC')}}
      AND revenue > 0 AND upper(currency) = {{currency:String}}
      AND (props['transaction_id'] = '' OR props['transaction_id'] NOT IN (
          SELECT arrayJoin(arrayConcat(refs, [transaction_id]))
          FROM payments FINAL WHERE website_id = {{site:UUID}}))
),
touches AS (
    SELECT c.key AS key, s.started_at AS at, s.channel AS channel, s.value AS value
    FROM conversions AS c
    INNER JOIN (
        SELECT visitor_id, started_at, channel, {column} AS value
        FROM sessions FINAL
        WHERE website_id = {{site:UUID}} AND sign = 1
          AND started_at < {{date_to:DateTime64(3, 'UTC')}} + toIntervalSecond({{skew:UInt32}})
          -- only the days some conversion's window can reach (renewals and refunds reach back)
          AND started_at >= (SELECT min(anchor_at) FROM conversions) - toIntervalDay({{lookback:UInt32}})
    ) AS s ON s.visitor_id = c.visitor_id
    WHERE c.visitor_id != ''
      AND s.started_at <= c.anchor_at + toIntervalSecond({{skew:UInt32}})
      AND s.started_at >= c.anchor_at - toIntervalDay({{lookback:UInt32}})
),
chosen AS (
    SELECT
        key,
        argMin(value, at) AS first_touch,
        argMax(value, at) AS last_touch,
        if(countIf(channel != 'direct') > 0, argMaxIf(value, at, channel != 'direct'), argMax(value, at))
            AS last_non_direct
    FROM touches
    GROUP BY key
)
SELECT
    ch.key != '' AS linked,
    if(linked, ch.{model}, '') AS value,
    sum(c.amount) AS revenue,
    sumIf(c.amount, c.is_renewal = 0) AS new_revenue,
    sumIf(c.amount, c.is_renewal = 1) AS renewal_revenue,
    -sumIf(c.amount, c.kind = 'refund') AS refunds,
    countIf(c.kind = 'payment') AS payments,
    sumIf(c.amount, c.kind = 'payment') AS gross,
    uniqExactIf(c.visitor_id, c.kind = 'payment' AND c.visitor_id != '') AS customers
FROM conversions AS c
LEFT JOIN chosen AS ch ON ch.key = c.key
GROUP BY linked, value
"""

_VISITORS_SQL = """
SELECT {column} AS value, uniqExact(visitor_id) AS visitors
FROM sessions FINAL
WHERE website_id = {{site:UUID}} AND sign = 1
  AND started_at >= {{date_from:DateTime64(3, 'UTC')}} AND started_at < {{date_to:DateTime64(3, 'UTC')}}
GROUP BY value
"""


async def attribution_report(store: EventStore, query: AttributionQuery) -> AttributionReport:
    column = DIMENSIONS[query.dimension]
    model = MODELS[query.model]
    parameters: dict[str, Any] = {
        "site": str(query.website_id),
        "date_from": query.date_from,
        "date_to": query.date_to,
        "currency": query.currency,
        "lookback": query.lookback_days,
        "skew": CLOCK_SKEW,
    }
    money = await store.query(_REVENUE_SQL.format(column=column, model=model), parameters=parameters)
    traffic = await store.query(_VISITORS_SQL.format(column=column), parameters=parameters)
    visitors = {str(value): int(count) for value, count in traffic.result_rows}

    rows: dict[str | None, AttributionRow] = {}
    for linked, value, revenue, new, renewal, refunds, payments, gross, customers in money.result_rows:
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

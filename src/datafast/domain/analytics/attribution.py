"""Revenue attribution: which visits brought the money, by any sessions dimension.

The conversions (payments, refunds and tracker revenue, with the double-count rule) and the
attribution models are defined once in :mod:`datafast.domain.analytics.conversions`, shared with the
Stats API. Here: group the attributed money by one ``sessions`` column of the credited visit
(picked from a fixed table, never from input) and add the visitors of each value. Money with no
visitor, or no visit in the window, is reported with ``value: null`` (unknown source).

The window is bounded like every report (:func:`datafast.domain.analytics.dates.attribution_window`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from datafast.domain.analytics import conversions
from datafast.domain.analytics.catalog import ATTRIBUTION_DIMENSIONS
from datafast.domain.analytics.conversions import DEFAULT_CLIENT_REVENUE, MODELS, ClientRevenue, MoneyWindow
from datafast.domain.analytics.credits import CARRIED, Credits, stored_attributed
from datafast.domain.analytics.schemas import AttributionReport, AttributionRow
from datafast.lib.eventstore import EventStore

__all__ = ("DIMENSIONS", "MODELS", "AttributionQuery", "attribution_report")

DIMENSIONS = ATTRIBUTION_DIMENSIONS

MAX_ROWS = 500


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
SELECT a.key != '' AS linked, if(linked, a.s_{column}, '') AS value, {money}
FROM conversions AS c
LEFT JOIN attributed AS a ON a.key = c.key
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
    if column in CARRIED and await Credits(store).complete(window):
        attributed = stored_attributed([column])
        parameters["cr_model"] = query.model
    else:
        attributed = conversions.attributed(query.model, [column])
    sql = _REVENUE_SQL.format(
        conversions=conversions.CONVERSIONS,
        attributed=attributed,
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

"""The money analytics count, and the visit each amount is attributed to: the one place for both rules.

Used by the attribution report (:mod:`datafast.domain.analytics.attribution`) and by the Stats API
(:mod:`datafast.domain.analytics.queries`), so the two always agree.

**Conversions** (the ``conversions`` CTE): every stored payment and refund (``payments``, by its
own timestamp, ``amount_site`` in the site's currency, refunds negative), plus every tracker event
with a revenue value (a ``purchase``, a goal with a value; read from ``revenue_events``, their copy
kept by a materialized view) whose ``props.transaction_id`` no stored payment carries. That is
the double-count rule: a sale reported both by the tracker and by a provider counts once, as the
provider's payment, when the tracker event carries the provider's transaction id (order id,
checkout session, payment intent, or ``POST /api/v1/payments`` transaction_id); a tracker event
without one always counts. Tracker revenue in another currency
than the site's is left out (it has no rate of its own). Tracker revenue counts as a payment.

**Unverified money** (:class:`ClientRevenue`, the site's policy from
:mod:`datafast.domain.revenue.trust`): anyone who knows a site's id can send ``/track`` a purchase,
so tracker revenue counts only as the policy says — ``counted`` 2: always; 1: only while the site
has no payment stored (from a webhook or the Payments API; checked here, at query time); 0: never
— and each event counts for at most ``cap``. This is the one place the rule is applied: every
money metric, breakdown and the attribution report read ``conversions``.

**Attribution** (the ``attributed`` CTE): a conversion's touches are its visitor's visits that
started within ``lookback_days`` before its ``anchor_at`` (the payment time; a renewal's first
payment; a refund's original payment). First touch takes the earliest, last touch the latest, last
non-direct the latest whose channel is not direct (the latest visit when all are direct). Money
with no visitor, or no visit in the window, has no row there (unknown source).

Values are bound server-side as ``{cv_*}`` parameters (:func:`parameters`); only the fixed
expressions below are written into SQL.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = (
    "CLIENT_MONEY",
    "CLOCK_SKEW",
    "CONVERSIONS",
    "COUNTED_REVENUE",
    "DEFAULT_CLIENT_REVENUE",
    "DEFAULT_LOOKBACK_DAYS",
    "DEFAULT_MODEL",
    "MODELS",
    "MONEY",
    "VISITS_FROM",
    "VISITS_TO",
    "ClientRevenue",
    "MoneyWindow",
    "attributed",
    "client_parameters",
    "money_columns",
    "parameters",
)

DEFAULT_MODEL = "last_non_direct"
"""What most revenue tools default to: a final direct visit (typing the address to pay) does not
take the credit from the campaign that brought the customer."""
DEFAULT_LOOKBACK_DAYS = 30
CLOCK_SKEW = 60
"""Seconds a visit may start after the payment and still count: the provider's clock and the
visitor's are not the same, and provider timestamps are often whole seconds."""

# Over the touches (``visit``, ``at``, ``touch_channel``): which touch's ``{value}`` each model takes.
# Ties on the start time go to the larger id.
MODELS: Mapping[str, str] = {
    "first": "argMin({value}, (at, visit))",
    "last": "argMax({value}, (at, visit))",
    "last_non_direct": (
        "if(countIf(touch_channel != 'direct') > 0,"
        " argMaxIf({value}, (at, visit), touch_channel != 'direct'),"
        " argMax({value}, (at, visit)))"
    ),
}


NEVER, UNLESS_VERIFIED, ALWAYS = 0, 1, 2
"""Values of :attr:`ClientRevenue.counted`."""


@dataclass(frozen=True, slots=True)
class ClientRevenue:
    """Whether tracker (client-side, unverified) revenue counts as money, and its per-event cap."""

    counted: int = UNLESS_VERIFIED
    """2: always; 1: while the site has no payment stored (webhooks, Payments API); 0: never."""
    cap: int = 1_000_000
    """The most one tracker event counts for, in the units ``events.revenue`` is stored in
    (hundredths of the currency unit: the tracker's amount times 100)."""


DEFAULT_CLIENT_REVENUE = ClientRevenue()


def client_parameters(client: ClientRevenue, website_id: str, currency: str) -> dict[str, Any]:
    """The values :data:`CLIENT_MONEY` and :data:`COUNTED_REVENUE` bind."""
    return {
        "cv_site": website_id,
        "cv_currency": currency.upper(),
        "cv_client": client.counted,
        "cv_client_cap": client.cap,
    }


CLIENT_COUNTED = """({cv_client:UInt8} = 2 OR {cv_client:UInt8} = 1 AND (
        SELECT count() FROM payments WHERE website_id = {cv_site:UUID}) = 0)"""
"""Whether the site's tracker revenue counts (a condition over no row: the policy and the site)."""
CLIENT_AMOUNT = "least(revenue, {cv_client_cap:Int64})"
"""What one tracker revenue event (an ``events`` row) counts for."""


def _client_money(transaction_id: str) -> str:
    """Whether a tracker revenue row is money received: the site's currency, the policy, and the
    double-count rule (no stored payment carries its ``transaction_id``, read from ``transaction_id``)."""
    return f"""upper(currency) = {{cv_currency:String}}
      AND {CLIENT_COUNTED}
      AND ({transaction_id} = '' OR {transaction_id} NOT IN (
          SELECT arrayJoin(arrayConcat(refs, [transaction_id]))
          FROM payments FINAL WHERE website_id = {{cv_site:UUID}}))"""  # noqa: S608 - constants only


CLIENT_MONEY = _client_money("props['transaction_id']")
"""Whether an ``events`` row's revenue is money received."""

COUNTED_REVENUE = f"if(revenue > 0 AND {CLIENT_MONEY}, {CLIENT_AMOUNT}, 0)"
"""What an ``events`` row adds to the money (0 when nothing): the visitors list, the CSV export."""


@dataclass(frozen=True, slots=True)
class MoneyWindow:
    """Which money: a site's conversions in ``[start, end)``, attributed with ``model``."""

    website_id: str
    currency: str
    start: datetime
    end: datetime
    model: str = DEFAULT_MODEL
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    client: ClientRevenue = DEFAULT_CLIENT_REVENUE
    """The site's policy for tracker revenue."""


def _utc(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def parameters(window: MoneyWindow) -> dict[str, Any]:
    """The values the CTEs below bind."""
    return {
        "cv_site": window.website_id,
        "cv_currency": window.currency.upper(),
        "cv_from": _utc(window.start),
        "cv_to": _utc(window.end),
        "cv_lookback": window.lookback_days,
        "cv_skew": CLOCK_SKEW,
        **client_parameters(window.client, window.website_id, window.currency),
    }


# Only this module's constant fragments are formatted in; every value is a bound {cv_*} parameter.
CONVERSIONS = f"""conversions AS (
    SELECT payment_key AS key, kind, is_renewal, visitor_id, timestamp AS paid_at, anchor_at,
           amount_site AS amount
    FROM payments FINAL
    WHERE website_id = {{cv_site:UUID}}
      AND timestamp >= {{cv_from:DateTime64(3, 'UTC')}} AND timestamp < {{cv_to:DateTime64(3, 'UTC')}}
    UNION ALL
    SELECT concat('event:', toString(event_id)), 'payment', 0, visitor_id, timestamp, timestamp,
           {CLIENT_AMOUNT}
    FROM revenue_events
    WHERE website_id = {{cv_site:UUID}}
      AND timestamp >= {{cv_from:DateTime64(3, 'UTC')}} AND timestamp < {{cv_to:DateTime64(3, 'UTC')}}
      AND {_client_money("transaction_id")}
)"""  # noqa: S608
"""Columns: key, kind (payment | refund), is_renewal, visitor_id, paid_at, anchor_at, amount."""

VISITS_FROM = """(least({cv_from:DateTime64(3, 'UTC')}, ifNull((
        SELECT minOrNull(anchor_at) FROM payments
        WHERE website_id = {cv_site:UUID}
          AND timestamp >= {cv_from:DateTime64(3, 'UTC')} AND timestamp < {cv_to:DateTime64(3, 'UTC')}
    ), {cv_from:DateTime64(3, 'UTC')})) - toIntervalDay({cv_lookback:UInt32}))"""
"""The earliest start a credited visit can have: renewals and refunds reach back to their first
payment. A bound to read fewer visits (tracker revenue is anchored in the range itself)."""
VISITS_TO = "({cv_to:DateTime64(3, 'UTC')} + toIntervalSecond({cv_skew:UInt32}))"
"""The latest start a credited visit can have."""

_ATTRIBUTED = """attributed AS (
    SELECT c.key AS key, {picked}
    FROM conversions AS c
    INNER JOIN (
        -- The visits of converting visitors only, each at its latest version.
        SELECT visitor_id, session_id AS visit, argMax(started_at, version) AS at,
               argMax(channel, version) AS touch_channel{latest}
        FROM sessions
        WHERE website_id = {{cv_site:UUID}}
          AND visitor_id IN (SELECT visitor_id FROM conversions WHERE visitor_id != '')
          AND started_at < {visits_to} AND started_at >= {visits_from}
        GROUP BY visitor_id, session_id HAVING sum(sign) > 0
    ) AS s ON s.visitor_id = c.visitor_id
    WHERE c.visitor_id != ''
      AND s.at <= c.anchor_at + toIntervalSecond({{cv_skew:UInt32}})
      AND s.at >= c.anchor_at - toIntervalDay({{cv_lookback:UInt32}})
    GROUP BY c.key
)"""


def attributed(model: str, columns: Sequence[str] = ()) -> str:
    """The ``attributed`` CTE (after ``conversions``): ``key`` → the ``session_id`` credited by
    ``model``, and each of ``columns`` (``sessions`` columns, from a fixed table) of that visit as
    ``s_<column>``, at its latest version: what a breakdown by a visit attribute needs, read with
    the touches instead of from the visits again."""
    pick = MODELS[model]
    if columns:
        value = f"tuple(visit, {', '.join(f'c_{c}' for c in columns)})"
        picked = f"{pick.format(value=value)} AS credited, credited.1 AS session_id" + "".join(
            f", credited.{i} AS s_{c}" for i, c in enumerate(columns, start=2)
        )
    else:
        picked = f"{pick.format(value='visit')} AS session_id"
    latest = "".join(f", argMax({c}, version) AS c_{c}" for c in columns)
    return _ATTRIBUTED.format(picked=picked, latest=latest, visits_from=VISITS_FROM, visits_to=VISITS_TO)


MONEY: Mapping[str, str] = {
    "revenue": "sum(c.amount)",
    "new_revenue": "sumIf(c.amount, c.is_renewal = 0)",
    "renewal_revenue": "sumIf(c.amount, c.is_renewal = 1)",
    "refunds": "-sumIf(c.amount, c.kind = 'refund')",
    "payments": "countIf(c.kind = 'payment')",
    "gross": "sumIf(c.amount, c.kind = 'payment')",
    "payers": "groupUniqArrayIf(c.visitor_id, c.kind = 'payment' AND c.visitor_id != '')",
}
"""Aggregates over conversions (aliased ``c``): net revenue, new and renewal parts, refunds (positive),
payments (tracker revenue events included), gross (payments before refunds), the paying visitors."""


def money_columns(prefix: str = "r_", names: Collection[str] | None = None) -> str:
    """``MONEY`` as a select list, each named ``<prefix><name>`` (only ``names``, when given: the paying
    visitors are an array of ids, not worth building for a report that does not count them)."""
    return ", ".join(
        f"{sql} AS {prefix}{name}" for name, sql in MONEY.items() if names is None or name in names
    )

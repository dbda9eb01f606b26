"""The payments repository: every ClickHouse statement on ``payments`` and ``exchange_rates``.

Reads use ``FINAL`` (a payment key's newest version); values are bound server-side.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from datafast.lib.eventstore import EventStore

__all__ = ("PaymentRow", "PaymentStore")


@dataclass(slots=True)
class PaymentRow:
    website_id: str
    payment_key: str
    version: int
    provider: str
    kind: str
    is_renewal: int
    transaction_id: str
    refs: list[str]
    subscription_id: str
    customer_id: str
    timestamp: datetime
    anchor_at: datetime
    amount: int
    currency: str
    amount_site: int
    site_currency: str
    rate_source: str
    visitor_id: str
    session_id: str
    link: str
    email_hash: str


COLUMNS = tuple(f.name for f in fields(PaymentRow))
_SELECT = ", ".join(COLUMNS)
RATE_MAX_AGE = timedelta(days=7)
"""A day without a published rate (weekends, holidays) uses the last rate at most this old."""


def _row(values: Sequence[Any]) -> PaymentRow:
    row = PaymentRow(*values)
    row.website_id = str(row.website_id)
    row.refs = list(row.refs)
    return row


class PaymentStore:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    async def _rows(
        self, where: str, parameters: dict[str, Any], order: str = "timestamp"
    ) -> list[PaymentRow]:
        result = await self.store.query(
            f"SELECT {_SELECT} FROM payments FINAL WHERE website_id = {{site:UUID}} AND {where} "  # noqa: S608 - fixed fragments
            f"ORDER BY {order}",
            parameters=parameters,
        )
        return [_row(values) for values in result.result_rows]

    async def by_key(self, site: uuid.UUID, key: str) -> PaymentRow | None:
        rows = await self._rows("payment_key = {key:String}", {"site": str(site), "key": key})
        return rows[0] if rows else None

    async def payment_sharing_refs(
        self, site: uuid.UUID, provider: str, refs: list[str]
    ) -> PaymentRow | None:
        """The stored payment that any of ``refs`` names: the same money seen through another event."""
        if not refs:
            return None
        rows = await self._rows(
            "provider = {provider:String} AND kind = 'payment' AND hasAny(refs, {refs:Array(String)})",
            {"site": str(site), "provider": provider, "refs": refs},
        )
        return rows[0] if rows else None

    async def sharing_refs(self, site: uuid.UUID, provider: str, refs: list[str]) -> list[PaymentRow]:
        """Every stored row (payments and their refunds) that any of ``refs`` names."""
        if not refs:
            return []
        return await self._rows(
            "provider = {provider:String} AND hasAny(refs, {refs:Array(String)})",
            {"site": str(site), "provider": provider, "refs": refs},
        )

    async def payment_of_customer(
        self, site: uuid.UUID, provider: str, customer_id: str, amount: int, before: datetime
    ) -> PaymentRow | None:
        """The customer's latest payment of exactly ``amount`` made before ``before``."""
        rows = await self._rows(
            "provider = {provider:String} AND kind = 'payment' AND customer_id = {customer:String} "
            "AND amount = {amount:Int64} AND timestamp <= {before:DateTime64(3, 'UTC')}",
            {
                "site": str(site),
                "provider": provider,
                "customer": customer_id,
                "amount": amount,
                "before": before,
            },
            order="timestamp DESC LIMIT 1",
        )
        return rows[0] if rows else None

    async def first_of_subscription(
        self, site: uuid.UUID, provider: str, subscription_id: str, customer_id: str
    ) -> PaymentRow | None:
        """A renewal's first payment: same subscription, else the customer's first new payment."""
        if not subscription_id and not customer_id:
            return None
        rows = await self._rows(
            "provider = {provider:String} AND kind = 'payment' AND ("
            "(subscription_id != '' AND subscription_id = {sub:String}) OR "
            "(is_renewal = 0 AND customer_id != '' AND customer_id = {customer:String}))",
            {"site": str(site), "provider": provider, "sub": subscription_id, "customer": customer_id},
            order="subscription_id = {sub:String} DESC, is_renewal, timestamp LIMIT 1",
        )
        return rows[0] if rows else None

    async def latest_paid(
        self, site: uuid.UUID, provider: str, subscription_id: str, refs: list[str], before: datetime
    ) -> PaymentRow | None:
        """A subscription's latest payment of money at or before ``before``: its invoices (same
        subscription id) or its first order (one of ``refs``)."""
        rows = await self._rows(
            "provider = {provider:String} AND kind = 'payment' AND amount > 0"
            " AND timestamp <= {before:DateTime64(3, 'UTC')} AND ("
            "(subscription_id != '' AND subscription_id = {sub:String})"
            " OR hasAny(refs, {refs:Array(String)}))",
            {"site": str(site), "provider": provider, "sub": subscription_id, "refs": refs, "before": before},
            order="timestamp DESC LIMIT 1",
        )
        return rows[0] if rows else None

    async def refunded(self, site: uuid.UUID, provider: str, scope: str) -> int:
        """Minor units already stored as refunded for a cumulative refund scope (positive)."""
        result = await self.store.query(
            "SELECT -sum(amount) FROM payments FINAL WHERE website_id = {site:UUID} "
            "AND provider = {provider:String} AND kind = 'refund' AND has(refs, {scope:String})",
            parameters={"site": str(site), "provider": provider, "scope": scope},
        )
        return int(result.result_rows[0][0] or 0) if result.result_rows else 0

    async def visitor_by_email(
        self, site: uuid.UUID, email_hash: str, at: datetime
    ) -> tuple[str, str] | None:
        """The visitor whose ``identify`` carried this email hash: the latest at or before ``at``,
        else the first after it (an identify sent from the thank-you page)."""
        result = await self.store.query(
            "SELECT visitor_id, session_id FROM events WHERE website_id = {site:UUID} "
            "AND event_name = 'identify' AND props['email_hash'] = {hash:String} AND visitor_id != '' "
            "ORDER BY timestamp > {at:DateTime64(3, 'UTC')}, "
            "abs(dateDiff('millisecond', timestamp, {at:DateTime64(3, 'UTC')})) LIMIT 1",
            parameters={"site": str(site), "hash": email_hash, "at": at},
        )
        if not result.result_rows:
            return None
        visitor, session = result.result_rows[0]
        return str(visitor), str(session)

    async def unlinked_by_email(self, site: uuid.UUID | str, hashes: list[str]) -> list[PaymentRow]:
        """The site's payments and refunds linked to no visitor whose customer email hash is in ``hashes``."""
        return await self._rows(
            "link = 'none' AND email_hash IN {hashes:Array(String)}", {"site": str(site), "hashes": hashes}
        )

    async def missing_rates(self) -> list[PaymentRow]:
        """Payments of every site stored without a rate to the site's currency."""
        result = await self.store.query(
            f"SELECT {_SELECT} FROM payments FINAL WHERE rate_source = 'missing' "  # noqa: S608
            "ORDER BY website_id, timestamp"
        )
        return [_row(values) for values in result.result_rows]

    async def insert(self, rows: list[PaymentRow]) -> None:
        if rows:
            await self.store.insert(
                "payments", [[getattr(row, c) for c in COLUMNS] for row in rows], column_names=COLUMNS
            )

    async def rate(self, base: str, quote: str, day: date) -> float | None:
        """1 ``base`` in ``quote`` on ``day`` (or the last published day before it), either direction."""
        result = await self.store.query(
            "SELECT if(base = {base:String}, rate, 1 / rate) FROM exchange_rates FINAL "
            "WHERE ((base = {base:String} AND quote = {quote:String}) "
            "OR (base = {quote:String} AND quote = {base:String})) "
            "AND day <= {day:Date} AND day >= {oldest:Date} AND rate > 0 ORDER BY day DESC LIMIT 1",
            parameters={"base": base, "quote": quote, "day": day, "oldest": day - RATE_MAX_AGE},
        )
        return float(result.result_rows[0][0]) if result.result_rows else None

    async def load_rates(self, rows: list[tuple[date, str, str, float]], source: str) -> None:
        await self.store.insert(
            "exchange_rates",
            [[day, base, quote, rate, source] for day, base, quote, rate in rows],
            column_names=("day", "base", "quote", "rate", "source"),
        )

"""What every provider adapter turns a verified webhook into: :class:`Incoming` payments and refunds."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import msgspec

__all__ = (
    "BadSignature",
    "Incoming",
    "Provider",
    "SubscriptionState",
    "Verified",
    "equal",
    "get",
    "link_ids",
    "parse_time",
)

VISITOR_KEY = "datafast_visitor_id"
SESSION_KEY = "datafast_session_id"


class BadSignature(ValueError):
    """The delivery is not signed with the connection's secret, or is too old: answered 400."""


@dataclass(slots=True)
class Incoming:
    """One payment or refund read from a provider's payload, before linking and conversion.

    ``refs`` are every id the provider may later use for the same money (payment intent,
    invoice, checkout session, order): two events sharing a ref are one payment. A refund
    names its payment's refs in ``refund_of``; a cumulative refund (``amount`` is the total
    refunded so far of ``refund_scope``) is stored as the delta to what was stored before.
    """

    kind: Literal["payment", "refund"]
    key: str
    timestamp: datetime
    amount: int
    currency: str
    transaction_id: str
    refs: list[str] = field(default_factory=list)
    refund_of: list[str] = field(default_factory=list)
    cumulative: bool = False
    refund_scope: str = ""
    is_renewal: bool = False
    subscription_id: str = ""
    customer_id: str = ""
    visitor_id: str = ""
    session_id: str = ""
    email: str = ""
    original_amount: int = 0
    """For a refund: its payment's amount, to find the payment by customer when no ref names it."""
    provider_amounts: dict[str, int] = field(default_factory=dict)
    """The same amount in other currencies, converted by the provider (minor units by currency)."""


MONTHS_PER = {"day": 12 / 365, "week": 12 / 52, "month": 1, "year": 12}
"""How many months one billing interval lasts (a year is 12 months, a week 12/52 of one)."""

LIVE = frozenset({"active", "past_due"})
"""Statuses that count in MRR (a trial does not pay yet; a canceled or paused one no longer does)."""


@dataclass(slots=True)
class SubscriptionState:
    """A subscription as one lifecycle event describes it, at the provider's event time ``at``.

    ``amount`` is what one billing period costs (minor units of ``currency``, every item and
    quantity included); ``status`` is the provider's word mapped to ``trialing | active |
    past_due | paused | incomplete | ended``; a cancellation that waits for the period's end keeps
    the subscription ``active`` with ``canceled_at`` set until it ends.
    """

    subscription_id: str
    event_id: str
    at: datetime
    status: str
    amount: int
    currency: str
    interval: str = "month"
    interval_count: int = 1
    plan: str = ""
    customer_id: str = ""
    started_at: datetime | None = None
    trial_start: datetime | None = None
    trial_end: datetime | None = None
    canceled_at: datetime | None = None
    ended_at: datetime | None = None
    visitor_id: str = ""
    session_id: str = ""
    priced_by_payments: bool = False
    """The provider's payload has no price (Lemon Squeezy): ``amount``, ``currency`` and the
    interval are read from the subscription's payments when it is recorded (see
    :meth:`PaymentService.record_subscriptions`)."""
    payment_refs: list[str] = field(default_factory=list)
    """Refs of the subscription's first payment (its order) for :attr:`priced_by_payments`."""
    renews_at: datetime | None = None
    """The next charge, for :attr:`priced_by_payments`' interval."""

    @property
    def mrr(self) -> int:
        """The monthly recurring revenue it brings now (0 unless it is paying)."""
        if self.status not in LIVE or self.amount <= 0:
            return 0
        months = MONTHS_PER.get(self.interval, 1) * max(self.interval_count, 1)
        return round(self.amount / months)


@dataclass(slots=True)
class Verified:
    """A delivery whose signature checked out: its id (for de-duplication) and what it means."""

    delivery_id: str
    event: str
    items: list[Incoming]
    subscriptions: list[SubscriptionState] = field(default_factory=list)


class Provider(Protocol):
    name: str

    def verify(self, body: bytes, headers: dict[str, str], secret: str, now: float) -> Verified:
        """Check the signature on the raw body, then parse; raise :class:`BadSignature`."""
        ...


def equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


_json = msgspec.json.Decoder()


def decode_json(body: bytes) -> dict[str, Any]:
    try:
        data = _json.decode(body)
    except msgspec.DecodeError:
        raise BadSignature("the body is not JSON") from None
    if not isinstance(data, dict):
        raise BadSignature("the body is not a JSON object")
    return data


def get(data: Any, *path: str | int, default: Any = None) -> Any:
    """``data[path[0]][path[1]]…``, or ``default`` when any step is missing or the wrong type."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(data, list) or not -len(data) <= step < len(data):
                return default
        elif not isinstance(data, dict) or step not in data:
            return default
        data = data[step]
    return default if data is None else data


def link_ids(*sources: Any) -> tuple[str, str]:
    """``(visitor_id, session_id)`` from the first metadata mapping (or name/value list) that has them."""
    for source in sources:
        values: dict[str, Any] = {}
        if isinstance(source, dict):
            values = source
        elif isinstance(source, list):  # Shopify note_attributes: [{"name": …, "value": …}]
            values = {get(item, "name"): get(item, "value") for item in source if isinstance(item, dict)}
        visitor = values.get(VISITOR_KEY)
        if isinstance(visitor, str) and visitor.strip():
            session = values.get(SESSION_KEY)
            return visitor.strip()[:64], session.strip()[:64] if isinstance(session, str) else ""
    return "", ""


def parse_time(value: Any, default: datetime | None = None) -> datetime:
    """Unix seconds or an ISO 8601 string → an aware UTC datetime."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return default or datetime.now(UTC)


def maybe_time(value: Any) -> datetime | None:
    """:func:`parse_time` for an optional field: None when it is absent or unreadable."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    parsed = parse_time(value, datetime.min.replace(tzinfo=UTC))
    return None if parsed.year == 1 else parsed


def as_int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return 0

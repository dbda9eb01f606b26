"""Recording payments: de-duplication, linking to a visitor, conversion to the site's currency.

Rules (see REVENUE.md):
- a payment whose refs are already stored is the same money (a redelivery, or the provider's
  double-count trap): nothing new is counted; the stored row only gains a visitor link or
  refs it lacked (a newer version of the same key);
- a renewal inherits the visitor (and the attribution time) of its subscription's first
  payment; otherwise the metadata's ``datafast_visitor_id``; else the hashed email matched to
  an ``identify``; else it is kept unattributed;
- a refund is stored negative, as the delta when the provider reports a cumulative total,
  linked to its original payment (same visitor, attribution time, new/renewal and rate);
- ``amount_site`` uses the provider's own conversion when the payload has one, else the
  exchange-rate table on the payment's day (else the ECB history bundled with the install),
  never today's rate.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import msgspec

from datafast.domain.analytics.cache import ResultCache
from datafast.domain.analytics.credits import Credits
from datafast.domain.revenue.currency import from_rate
from datafast.domain.revenue.ecb import bundled_rate
from datafast.domain.revenue.providers import Incoming, SubscriptionState
from datafast.domain.revenue.store import PaymentRow, PaymentStore
from datafast.domain.revenue.subscriptions import SubscriptionStore, interval_between, state_row
from datafast.lib.adapters import Adapters
from datafast.lib.locks import Locks, MemoryLocks
from datafast.lib.pubsub import PubSub
from datafast.log import get_logger

__all__ = ("Outcome", "PaymentService", "email_hash")

log = get_logger(__name__)
_PIVOTS = ("EUR", "USD")


def email_hash(email: str) -> str:
    """How identify events store an email (sha256 of the trimmed, lowercased address)."""
    email = email.strip().lower()
    return hashlib.sha256(email.encode()).hexdigest() if email else ""


_realtime = msgspec.json.Encoder()
PRICE_SLACK = timedelta(hours=1)
"""How long after a price-less subscription state its pricing payment may be (see ``_priced``)."""


def _announce(row: PaymentRow) -> dict[str, object]:
    """A payment as the realtime channel carries tracked events (see datafast.domain.ingest.process)."""
    return {
        "id": f"{row.payment_key}:{row.version}",
        "type": "purchase" if row.kind == "payment" else "refund",
        "name": row.provider,
        "pathname": "",
        "country": "",
        "city": "",
        "source": "",
        "device": "",
        "visitor_id": row.visitor_id,
        "timestamp": row.timestamp.timestamp(),
        "revenue": row.amount_site,
        "currency": row.site_currency,
    }


@dataclass(slots=True)
class Outcome:
    stored: int = 0
    duplicates: int = 0
    updated: int = 0


class PaymentService:
    def __init__(
        self,
        store: PaymentStore,
        pubsub: PubSub | None = None,
        on_written: Callable[[Iterable[str]], Awaitable[None]] | None = None,
        on_linked: Callable[[Mapping[str, set[str]]], Awaitable[None]] | None = None,
        on_new: Callable[[list[PaymentRow]], Awaitable[None]] | None = None,
        locks: Locks | None = None,
    ) -> None:
        self.store = store
        self.locks = locks or MemoryLocks()
        """A site's payments are read and rewritten under its lock (see :meth:`record`)."""
        self.pubsub = pubsub
        """Where new payments and refunds are announced (the dashboard's live feed), when given."""
        self.on_written = on_written
        """Called with the site ids whose payments changed (drops their cached Stats API results)."""
        self.on_linked = on_linked
        """Called first with the visitors of the payments written, by site (their credited visits
        are refreshed); a failure fails the write, which the provider's redelivery repeats."""
        self.on_new = on_new
        """Called with new payments and refunds once stored (not newer versions of stored ones)."""

    @classmethod
    def wired(
        cls, adapters: Adapters, on_new: Callable[[list[PaymentRow]], Awaitable[None]] | None = None
    ) -> PaymentService:
        """As webhooks store money: announced live, credited to visits, the site's cached Stats API
        results dropped (like tracked events), new payments told to ``on_new``."""
        return cls(
            PaymentStore(adapters.event_store),
            adapters.pubsub,
            on_written=ResultCache(adapters.cache, adapters.settings.stats_cache_ttl).invalidate,
            on_linked=Credits(adapters.event_store).refresh,
            on_new=on_new,
            locks=adapters.locks,
        )

    async def _written(self, rows: list[PaymentRow]) -> None:
        await self.store.insert(rows)
        if rows and self.on_linked is not None:
            visitors: dict[str, set[str]] = {}
            for row in rows:
                if row.visitor_id:
                    visitors.setdefault(row.website_id, set()).add(row.visitor_id)
            await self.on_linked(visitors)
        if rows and self.on_written is not None:
            await self.on_written({row.website_id for row in rows})

    async def record(
        self, site: uuid.UUID, site_currency: str, provider: str, items: list[Incoming]
    ) -> Outcome:
        """Store payments and refunds. One site's are recorded one call at a time (across processes
        in scaled mode): a webhook and a history import — or two events of one payment, sent
        milliseconds apart — would otherwise both find the payment missing and both store it,
        and the one written last would win, its visitor link or not."""
        async with self.locks.hold(f"payments:{site}"):
            return await self._record(site, site_currency, provider, items)

    async def _record(
        self, site: uuid.UUID, site_currency: str, provider: str, items: list[Incoming]
    ) -> Outcome:
        outcome = Outcome()
        rows: list[PaymentRow] = []
        new: list[PaymentRow] = []
        for item in items:
            if not item.currency or item.amount < 0:
                continue
            stored = outcome.stored
            if item.kind == "payment":
                row = await self._payment(site, site_currency, provider, item, outcome)
            else:
                row = await self._refund(site, site_currency, provider, item, outcome)
            if row is not None:
                rows.append(row)
                if outcome.stored > stored:  # new money, not a newer version of a stored row
                    new.append(row)
        await self._written(rows)
        if self.pubsub is not None and new:
            await self.pubsub.publish(f"site:{site}", _realtime.encode([_announce(row) for row in new]))
        if self.on_new is not None and new:
            await self.on_new(new)
        return outcome

    async def record_subscriptions(
        self, site: uuid.UUID, site_currency: str, provider: str, states: list[SubscriptionState]
    ) -> int:
        """Store subscription states (MRR converted at the state's day); returns how many. Under the
        site's lock, as :meth:`record`: a state can tag its first payment."""
        async with self.locks.hold(f"payments:{site}"):
            return await self._record_subscriptions(site, site_currency, provider, states)

    async def _record_subscriptions(
        self, site: uuid.UUID, site_currency: str, provider: str, states: list[SubscriptionState]
    ) -> int:
        rows = []
        anchored: dict[str, tuple[str, int]] = {}
        for state in states:
            if state.priced_by_payments and state.subscription_id:
                await self._claim_first_payment(site, provider, state)
                state, sure = await self._priced(site, site_currency, provider, state)
                if sure:
                    anchored[state.subscription_id] = (state.interval, state.interval_count)
            if not state.subscription_id or not state.currency:
                continue
            found = None
            if state.currency != site_currency and state.mrr:
                found = await self.rate_and_source(state.currency, site_currency, state.at)
            rows.append(state_row(site, provider, state, site_currency, found[0] if found else None))
        subscriptions = SubscriptionStore(self.store.store)
        await subscriptions.insert(rows)
        for subscription_id, interval in anchored.items():
            await subscriptions.reprice(site, provider, subscription_id, interval)
        if rows and self.on_written is not None:
            await self.on_written({str(site)})
        return len(rows)

    async def _claim_first_payment(self, site: uuid.UUID, provider: str, state: SubscriptionState) -> None:
        """A first order that names no subscription (Lemon Squeezy's) is the subscription's first
        payment when the subscription names it (``payment_refs``): tag it, and its refunds, so the
        subscription's revenue and lifetime value count it. Refunds stored later inherit the tag."""
        untagged = [
            row
            for row in await self.store.sharing_refs(site, provider, state.payment_refs)
            if not row.subscription_id
        ]
        if untagged:
            await self._written(
                [
                    replace(row, subscription_id=state.subscription_id, version=time.time_ns())
                    for row in untagged
                ]
            )

    async def _priced(
        self, site: uuid.UUID, site_currency: str, provider: str, state: SubscriptionState
    ) -> tuple[SubscriptionState, bool]:
        """A state without a price (Lemon Squeezy) priced by its subscription's latest payment
        (an hour of slack: the renewal's payment and the update announcing it come together).

        Its billing interval: from that payment (or the trial's end) to ``renews_at`` when the state
        came with the payment — then it is sure (the second value) —, else the one the
        subscription's priced states have, else that same guess."""
        paid = await self.store.latest_paid(
            site, provider, state.subscription_id, state.payment_refs, state.at + PRICE_SLACK
        )
        if paid is None:  # a trial, or the payment is not here yet: no MRR to count
            return replace(state, amount=0, currency=site_currency), False
        start = paid.timestamp if paid.timestamp.tzinfo else paid.timestamp.replace(tzinfo=UTC)
        sure = (
            state.renews_at is not None
            and abs(state.at - start) <= PRICE_SLACK
            and state.renews_at > start + PRICE_SLACK
        )
        interval = None
        if not sure:
            interval = await SubscriptionStore(self.store.store).paid_interval(
                site, provider, state.subscription_id
            )
        if interval is None:
            if (
                state.trial_end is not None
                and state.renews_at is not None
                and state.trial_end < state.renews_at
            ):
                start = max(start, state.trial_end)
            interval = interval_between(start, state.renews_at) if state.renews_at else ("month", 1)
        priced = replace(
            state,
            amount=paid.amount,
            currency=paid.currency,
            interval=interval[0],
            interval_count=interval[1],
        )
        return priced, sure

    async def _payment(
        self, site: uuid.UUID, site_currency: str, provider: str, item: Incoming, outcome: Outcome
    ) -> PaymentRow | None:
        if item.amount == 0:
            return None
        existing = await self.store.payment_sharing_refs(site, provider, [*item.refs, item.key])
        if existing is None:
            existing = await self.store.by_key(site, item.key)
        if existing is not None:
            return await self._merge(site, existing, item, outcome)
        visitor, session, link, anchor = await self._link(site, provider, item)
        amount_site, rate_source = await self._convert(item, site_currency)
        outcome.stored += 1
        return PaymentRow(
            website_id=str(site),
            payment_key=item.key,
            version=time.time_ns(),
            provider=provider,
            kind="payment",
            is_renewal=int(item.is_renewal),
            transaction_id=item.transaction_id,
            refs=sorted({*item.refs, item.key}),
            subscription_id=item.subscription_id,
            customer_id=item.customer_id,
            timestamp=item.timestamp,
            anchor_at=anchor,
            amount=item.amount,
            currency=item.currency,
            amount_site=amount_site,
            site_currency=site_currency,
            rate_source=rate_source,
            visitor_id=visitor,
            session_id=session,
            link=link,
            email_hash=email_hash(item.email),
        )

    async def _merge(
        self, site: uuid.UUID, existing: PaymentRow, item: Incoming, outcome: Outcome
    ) -> PaymentRow | None:
        """The same payment again: keep its amount; add a link or refs it lacked, else store nothing."""
        refs = sorted({*existing.refs, *item.refs, item.key})
        merged = replace(
            existing,
            refs=refs,
            subscription_id=existing.subscription_id or item.subscription_id,
            customer_id=existing.customer_id or item.customer_id,
            email_hash=existing.email_hash or email_hash(item.email),
        )
        if existing.link == "none" and item.visitor_id:
            merged.visitor_id, merged.session_id, merged.link = item.visitor_id, item.session_id, "metadata"
        if merged == existing:
            outcome.duplicates += 1
            return None
        outcome.updated += 1
        merged.version = time.time_ns()
        return merged

    async def link_identified(self, identified: Mapping[str, set[str]]) -> int:
        """Link stored payments to visitors identified since: ``identified`` maps a site id to the
        email hashes of ``identify`` events just stored (an identify sent after the payment, or
        delivered late). Each payment gets the visitor the payment-time rule picks; returns how
        many were linked."""
        count = 0
        for site, hashes in identified.items():
            async with self.locks.hold(f"payments:{uuid.UUID(site)}"):  # as record() takes it
                linked: list[PaymentRow] = []
                for row in await self.store.unlinked_by_email(site, sorted(hashes)):
                    found = await self.store.visitor_by_email(uuid.UUID(site), row.email_hash, row.timestamp)
                    if found is not None:
                        visitor, session = found
                        linked.append(
                            replace(
                                row,
                                visitor_id=visitor,
                                session_id=session,
                                link="email",
                                version=time.time_ns(),
                            )
                        )
                if linked:
                    await self._written(linked)
                count += len(linked)
        return count

    async def _link(self, site: uuid.UUID, provider: str, item: Incoming) -> tuple[str, str, str, datetime]:
        """(visitor, session, how it was linked, when the attribution window ends)."""
        if item.is_renewal:
            first = await self.store.first_of_subscription(
                site, provider, item.subscription_id, item.customer_id
            )
            if first is not None and first.visitor_id:
                return first.visitor_id, first.session_id, "subscription", first.anchor_at
        if item.visitor_id:
            return item.visitor_id, item.session_id, "metadata", item.timestamp
        hashed = email_hash(item.email)
        if hashed:
            found = await self.store.visitor_by_email(site, hashed, item.timestamp)
            if found is not None:
                return found[0], found[1], "email", item.timestamp
        return "", "", "none", item.timestamp

    async def _refund(
        self, site: uuid.UUID, site_currency: str, provider: str, item: Incoming, outcome: Outcome
    ) -> PaymentRow | None:
        if item.cumulative:
            delta = item.amount - await self.store.refunded(site, provider, item.refund_scope)
            key = f"refund:{item.refund_scope}:{item.amount}"
        else:
            delta = item.amount
            key = item.key
        if delta <= 0 or await self.store.by_key(site, key) is not None:
            outcome.duplicates += 1
            return None
        original = await self.store.payment_sharing_refs(site, provider, item.refund_of)
        if original is None and item.customer_id and item.original_amount:
            original = await self.store.payment_of_customer(
                site, provider, item.customer_id, item.original_amount, item.timestamp
            )
        currency = item.currency or (original.currency if original else "")
        if original is not None and original.currency == currency and original.amount:
            # The original's own rate, so that a full refund takes exactly its amount back.
            amount_site = round(delta * original.amount_site / original.amount)
            rate_source = original.rate_source
        else:
            amount_site, rate_source = await self._convert(
                replace(item, amount=delta, currency=currency), site_currency
            )
        if original is not None:
            visitor, session, link, anchor = (
                original.visitor_id,
                original.session_id,
                original.link,
                original.anchor_at,
            )
        else:
            visitor, session, link, anchor = await self._link(site, provider, replace(item, is_renewal=False))
        outcome.stored += 1
        return PaymentRow(
            website_id=str(site),
            payment_key=key,
            version=time.time_ns(),
            provider=provider,
            kind="refund",
            is_renewal=original.is_renewal if original else int(item.is_renewal),
            transaction_id=original.transaction_id if original else item.transaction_id,
            refs=[item.refund_scope or item.key],
            subscription_id=item.subscription_id or (original.subscription_id if original else ""),
            customer_id=item.customer_id or (original.customer_id if original else ""),
            timestamp=item.timestamp,
            anchor_at=anchor,
            amount=-delta,
            currency=currency,
            amount_site=-amount_site,
            site_currency=site_currency,
            rate_source=rate_source,
            visitor_id=visitor,
            session_id=session,
            link=link,
            email_hash=original.email_hash if original else email_hash(item.email),
        )

    async def convert_missing(self) -> int:
        """Convert the payments stored before their day's rate was loaded; returns how many."""
        rows = []
        for row in await self.store.missing_rates():
            found = await self.rate_and_source(row.currency, row.site_currency, row.timestamp)
            if found is not None:
                amount_site = from_rate(row.amount, row.currency, row.site_currency, found[0])
                rows.append(
                    replace(row, amount_site=amount_site, rate_source=found[1], version=time.time_ns())
                )
        await self._written(rows)
        return len(rows)

    async def _convert(self, item: Incoming, site_currency: str) -> tuple[int, str]:
        """``(amount in the site's currency, where the rate came from)``."""
        if item.currency == site_currency:
            return item.amount, "same"
        if site_currency in item.provider_amounts:
            return item.provider_amounts[site_currency], "provider"
        found = await self.rate_and_source(item.currency, site_currency, item.timestamp)
        if found is None:
            log.warning(
                "no exchange rate", base=item.currency, quote=site_currency, day=str(item.timestamp.date())
            )
            return 0, "missing"
        return from_rate(item.amount, item.currency, site_currency, found[0]), found[1]

    async def rate_and_source(self, base: str, quote: str, at: datetime) -> tuple[float, str] | None:
        """The day's rate and where it came from: the loaded table (``"table"``) first, else the
        ECB history bundled with the install (``"ecb"``)."""
        rate = await self.rate(base, quote, at)
        if rate is not None:
            return rate, "table"
        rate = await bundled_rate(base, quote, at.date())
        return (rate, "ecb") if rate is not None else None

    async def rate(self, base: str, quote: str, at: datetime) -> float | None:
        """The day's rate, directly or through EUR or USD (an ECB table has EUR as its base)."""
        day = at.date()
        direct = await self.store.rate(base, quote, day)
        if direct is not None:
            return direct
        for pivot in _PIVOTS:
            if pivot in (base, quote):
                continue
            first = await self.store.rate(base, pivot, day)
            second = await self.store.rate(pivot, quote, day) if first is not None else None
            if first is not None and second is not None:
                return first * second
        return None

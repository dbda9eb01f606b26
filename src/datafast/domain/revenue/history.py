"""History on connect: a site's last N days of payments, refunds and subscriptions, read through
the provider's API with a read key, so a new connection shows money at once.

Each object the API lists is turned into the webhook event it would have arrived in and goes
through the webhook path's own parsing and storing (the provider's ``parse``,
:class:`PaymentService`): the same keys and refs, so a payment that also arrives by webhook while
the import runs (or was delivered before it) is stored once, and importing again stores nothing
new. Payments are read before subscriptions (a price-less subscription is priced by them).

- **Stripe** (a restricted key ``rk_…`` with read access), newest first with the ``stripe``
  package's auto-pagination: Checkout Sessions ``status=complete`` → ``checkout.session.completed``
  (paid ones count); invoices ``status=paid`` → ``invoice.paid``; charges with money refunded →
  ``charge.refunded`` (cumulative: the delta is stored). PaymentIntents made outside Checkout and
  Billing are not listed (webhooks carry them).
- **Polar** (an organization access token ``polar_oat_…`` with ``orders:read`` and
  ``subscriptions:read``), ``GET /v1/orders/`` and ``/v1/subscriptions/`` newest first, page by
  page: a paid order → ``order.paid``, its refunded amount → ``order.refunded``.
- **Lemon Squeezy** (an API key), the JSON:API lists ``/v1/orders``, ``/v1/subscription-invoices``
  and ``/v1/subscriptions`` page by page: an order → ``order_created`` (and ``order_refunded``), a
  renewal invoice → ``subscription_payment_success`` (and ``subscription_payment_refunded``). The
  API does not return a checkout's custom data: these payments link to visitors by the buyer's
  email (``identify``), not by metadata.

A subscription becomes the states of its life the history can tell: its start (trialing or
active), its trial's end, and its state now (canceled or ended at its own dates). The job
(``revenue_history``, an SAQ job in scaled mode, in-process embedded) keeps its progress on the
connection (``PaymentConnection.history``): status, the share of the range read, counts, error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import stripe
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from datafast.db.models import PaymentConnection, Website
from datafast.domain.revenue.providers import PROVIDERS, BadSignature, Verified
from datafast.domain.revenue.providers._base import as_int, get, parse_time
from datafast.domain.revenue.providers.lemonsqueezy import LemonSqueezyProvider
from datafast.domain.revenue.providers.polar import PolarProvider
from datafast.domain.revenue.providers.stripe import StripeProvider
from datafast.domain.revenue.sealing import SecretBox
from datafast.domain.revenue.service import PaymentService
from datafast.errors import InvalidInput
from datafast.lib.adapters import Adapters
from datafast.lib.queue import JobQueue
from datafast.log import get_logger
from datafast.settings import Settings

__all__ = ("DEFAULT_DAYS", "HISTORY", "MAX_DAYS", "revenue_history", "start_history")

log = get_logger(__name__)

HISTORY = "revenue_history"
HISTORY_TIMEOUT = 3600
DEFAULT_DAYS = 90
MAX_DAYS = 730
KEYS = {
    "stripe": (("rk_", "sk_"), "a Stripe restricted key (rk_…) with read access, or a secret key"),
    "polar": (
        ("polar_",),
        "a Polar organization access token (polar_oat_…) that may read orders and subscriptions",
    ),
    "lemonsqueezy": (("",), "a Lemon Squeezy API key"),
}
"""The providers whose history can be imported: what their read key looks like."""
_SAVE_EVERY = 1.0
"""Seconds between progress writes."""

# (what, the webhook event its objects would come in, the list call, its filters)
_LISTS: tuple[tuple[str, str, Callable[[stripe.StripeClient], Any], dict[str, Any]], ...] = (
    (
        "checkout_sessions",
        "checkout.session.completed",
        lambda c: c.v1.checkout.sessions,
        {"status": "complete"},
    ),
    ("invoices", "invoice.paid", lambda c: c.v1.invoices, {"status": "paid"}),
    ("charges", "charge.refunded", lambda c: c.v1.charges, {}),
    ("subscriptions", "customer.subscription.updated", lambda c: c.v1.subscriptions, {"status": "all"}),
)


def _state(status: str, **more: Any) -> dict[str, Any]:
    return {"status": status, "updated_at": datetime.now(UTC).isoformat(), **more}


async def start_history(
    db: AsyncSession, box: SecretBox, queue: JobQueue, connection: PaymentConnection, api_key: str, days: int
) -> dict[str, Any]:
    """Keep the read key and queue the import of the last ``days`` days."""
    if connection.provider not in KEYS:
        raise InvalidInput(f"History import is available for {', '.join(KEYS)} connections")
    prefixes, what = KEYS[connection.provider]
    if not api_key.startswith(prefixes) or len(api_key) < 20:
        raise InvalidInput(f"api_key must be {what}")
    running = (connection.history or {}).get("status") in ("queued", "running")
    if running:
        raise InvalidInput("A history import of this connection is already running")
    connection.api_key_encrypted = box.seal(api_key)
    connection.history = _state("queued", days=days, progress=0.0, payments=0, refunds=0, subscriptions=0)
    await db.commit()
    await queue.enqueue(HISTORY, timeout=HISTORY_TIMEOUT, connection_id=str(connection.id))
    return connection.history


class _Run:
    """One import: counts, progress, and writing them to the connection now and then."""

    def __init__(self, engine: AsyncEngine, connection_id: uuid.UUID, days: int) -> None:
        self.engine, self.connection_id = engine, connection_id
        self.now = datetime.now(UTC)
        self.since = self.now - timedelta(days=days)
        self.state: dict[str, Any] = _state(
            "running", days=days, progress=0.0, payments=0, refunds=0, subscriptions=0, duplicates=0
        )
        self.saved = 0.0

    async def save(self, force: bool = False) -> None:
        if not force and time.monotonic() - self.saved < _SAVE_EVERY:
            return
        self.saved = time.monotonic()
        self.state["updated_at"] = datetime.now(UTC).isoformat()
        async with AsyncSession(self.engine) as db:
            connection = await db.get(PaymentConnection, self.connection_id)
            if connection is not None:
                connection.history = dict(self.state)
                await db.commit()

    def progress(self, phase: int, phases: int, within: float) -> None:
        """The share read so far: whole phases (lists) plus this one's share; never backwards."""
        share = (phase + min(1.0, max(0.0, within))) / phases
        self.state["progress"] = max(self.state["progress"], round(share, 4))


class HistoryFailed(Exception):
    """The provider refused the key, or answered with an error: the import stops with this reason."""


Found = tuple[int, float, Verified]
"""What a reader yields: the phase (which list), the share of it read, what an object means."""


async def _stripe(api_key: str, settings: Settings, since: float, now: datetime) -> AsyncIterator[Found]:
    provider = PROVIDERS["stripe"]
    assert isinstance(provider, StripeProvider)
    http = stripe.HTTPXClient()
    client = stripe.StripeClient(
        api_key, base_addresses={"api": settings.stripe_api_base}, http_client=http, max_network_retries=2
    )
    try:
        for phase, (name, kind, service, filters) in enumerate(_LISTS):
            params = {"created": {"gte": int(since)}, "limit": 100, **filters}
            page = await service(client).list_async(params=params)
            async for item in page.auto_paging_iter():
                obj = item.to_dict(recursive=True)
                created = int(obj.get("created") or 0)
                if name == "subscriptions":
                    events = _stripe_subscription_events(obj, now)
                elif name == "charges" and not obj.get("amount_refunded"):
                    events = []
                else:
                    events = [
                        {
                            "id": f"history:{obj.get('id')}",
                            "type": kind,
                            "created": created,
                            "data": {"object": obj},
                        }
                    ]
                # Newest first: the share of the range read is how far back the list has come.
                within = (now.timestamp() - created) / ((now.timestamp() - since) or 1.0)
                for event in events:
                    yield phase, within, provider.parse(event)
    except stripe.AuthenticationError as exc:
        raise HistoryFailed("Stripe refused the key: use a restricted key with read access") from exc
    except stripe.PermissionError as exc:
        raise HistoryFailed(f"The key may not read everything needed: {exc.user_message or exc}") from exc
    except stripe.StripeError as exc:
        raise HistoryFailed(f"Stripe answered: {exc}") from exc
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]


def _stripe_subscription_events(obj: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """A subscription listed now, as the events of its life the history can tell: its start
    (trialing or active), its trial's end, and its state now (at its cancel or end time)."""
    sub_id = str(obj.get("id", ""))
    started = int(obj.get("start_date") or obj.get("created") or now.timestamp())
    trial_end = obj.get("trial_end")
    first = {**obj, "status": "trialing" if trial_end and trial_end > started else "active"}
    first.update(canceled_at=None, ended_at=None, cancel_at_period_end=False)
    events = [(started, first)]
    if trial_end and started < trial_end < now.timestamp() and obj.get("status") != "trialing":
        events.append((int(trial_end), {**first, "status": "active"}))
    last_at = obj.get("ended_at") or obj.get("canceled_at") or int(now.timestamp())
    if int(last_at) > started:
        events.append((int(last_at), obj))
    return [
        {
            "id": f"history:{sub_id}:{n}",
            "type": "customer.subscription.updated",
            "created": at,
            "data": {"object": o},
        }
        for n, (at, o) in enumerate(events)
    ]


async def _pages(
    http: httpx.AsyncClient, url: str, params: dict[str, Any], name: str
) -> AsyncIterator[dict[str, Any]]:
    """GET one page of a provider's list: its body, or why it cannot be read."""
    try:
        answer = await http.get(url, params=params)
    except httpx.HTTPError as exc:
        raise HistoryFailed(f"{name} could not be reached: {exc}") from exc
    if answer.status_code == 401:
        raise HistoryFailed(f"{name} refused the key: check it, or make a new one")
    if answer.status_code == 403:
        raise HistoryFailed(f"The key may not read everything needed ({name} answered 403)")
    if answer.status_code != 200:
        raise HistoryFailed(f"{name} answered {answer.status_code}: {answer.text[:200]}")
    body = answer.json()
    yield body if isinstance(body, dict) else {}


def _life(started: datetime, trial_end: datetime | None, now: datetime) -> list[tuple[str, datetime]]:
    """The moments of a subscription's life a history tells before its state now: its start
    (``trialing`` or ``active``) and, when a trial has ended since, that end (``active``)."""
    moments = [("trialing" if trial_end and trial_end > started else "active", started)]
    if trial_end and started < trial_end <= now:
        moments.append(("active", trial_end))
    return moments


async def _polar(api_key: str, settings: Settings, since: float, now: datetime) -> AsyncIterator[Found]:
    provider = PROVIDERS["polar"]
    assert isinstance(provider, PolarProvider)
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=settings.polar_api_base, headers=headers, timeout=30) as http:
        for phase, path in enumerate(("/v1/orders/", "/v1/subscriptions/")):
            found: list[Found] = []
            page, last = 1, 1
            while page <= last:
                params = {"page": page, "limit": 100, "sorting": "-created_at"}
                async for body in _pages(http, path, params, "Polar"):
                    last = int(get(body, "pagination", "max_page", default=1) or 1)
                    for obj in get(body, "items", default=[]) or []:
                        if parse_time(get(obj, "created_at")).timestamp() < since:
                            last = 0  # newest first: the rest is older
                            break
                        found.extend(_polar_events(provider, phase, obj, now))
                page += 1
            for step in _oldest_first(found):
                yield step


def _polar_events(provider: PolarProvider, phase: int, obj: dict[str, Any], now: datetime) -> list[Found]:
    created = parse_time(get(obj, "created_at")).timestamp()
    oid = str(get(obj, "id", default=""))

    def event(name: str, n: str, data: dict[str, Any]) -> Found:
        return phase, created, provider.parse(f"history:{oid}:{n}", name, data)

    if phase == 0:  # orders
        paid = get(obj, "paid") is True or get(obj, "status") in _POLAR_PAID
        found = [event("order.paid", "paid", obj)] if paid else []
        return found + (
            [event("order.refunded", "refund", obj)] if as_int(get(obj, "refunded_amount")) else []
        )
    started = parse_time(get(obj, "started_at") or get(obj, "created_at"))
    trial = get(obj, "trial_end")
    life = _life(started, parse_time(trial) if trial else None, now)
    past = {"canceled_at": None, "ended_at": None, "cancel_at_period_end": False}
    found = [
        event(
            "subscription.updated", str(n), {**obj, **past, "status": status, "modified_at": at.isoformat()}
        )
        for n, (status, at) in enumerate(life)
    ]
    latest = get(obj, "ended_at") or get(obj, "modified_at") or now.isoformat()
    if parse_time(latest) > life[-1][1]:
        found.append(event("subscription.updated", "now", {**obj, "modified_at": latest}))
    return found


_POLAR_PAID = ("paid", "refunded", "partially_refunded")


def _oldest_first(found: list[Found]) -> Iterator[Found]:
    """A list's objects in the order they happened, so a renewal finds the first payment whose
    visitor it inherits (``created`` is the object's time); the share of the list stored grows."""
    found.sort(key=lambda f: f[1])
    for n, (phase, _, verified) in enumerate(found, 1):
        yield phase, n / len(found), verified


async def _lemonsqueezy(
    api_key: str, settings: Settings, since: float, now: datetime
) -> AsyncIterator[Found]:
    provider = PROVIDERS["lemonsqueezy"]
    assert isinstance(provider, LemonSqueezyProvider)
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/vnd.api+json"}
    base = settings.lemonsqueezy_api_base
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        for phase, path in enumerate(("/v1/orders", "/v1/subscription-invoices", "/v1/subscriptions")):
            found: list[Found] = []
            page, last = 1, 1
            while page <= last:
                params = {"page[number]": page, "page[size]": 100}
                async for body in _pages(http, path, params, "Lemon Squeezy"):
                    last = int(get(body, "meta", "page", "lastPage", default=1) or 1)
                    for resource in get(body, "data", default=[]) or []:
                        found.extend(_lemonsqueezy_events(provider, phase, resource, since, now))
                page += 1
            for step in _oldest_first(found):
                yield step


def _lemonsqueezy_events(
    provider: LemonSqueezyProvider, phase: int, resource: dict[str, Any], since: float, now: datetime
) -> list[Found]:
    attributes = get(resource, "attributes", default={})
    if not isinstance(attributes, dict):
        return []
    created = parse_time(get(attributes, "created_at")).timestamp()
    rid = str(get(resource, "id", default=""))
    if created < since:
        return []

    def event(name: str, n: str, **changes: Any) -> Found:
        data = {**resource, "attributes": {**attributes, **changes}}
        return phase, created, provider.parse(f"history:{rid}:{n}", name, data)

    refunded = as_int(get(attributes, "refunded_amount")) > 0
    if phase == 0:  # orders
        found = [event("order_created", "paid")] if attributes.get("status") in _LS_PAID else []
        return found + ([event("order_refunded", "refund")] if refunded else [])
    if phase == 1:  # subscription invoices (the first one is its order's money)
        paid = attributes.get("status") in _LS_PAID
        found = [event("subscription_payment_success", "paid", status="paid")] if paid else []
        return found + ([event("subscription_payment_refunded", "refund")] if refunded else [])
    started = parse_time(get(attributes, "created_at"))
    trial = get(attributes, "trial_ends_at")
    states = [
        event(
            "subscription_updated",
            str(n),
            status="on_trial" if status == "trialing" else status,
            updated_at=at.isoformat(),
            cancelled=False,
            ends_at=None,
            renews_at=None,  # only the state now says when it renews
        )
        for n, (status, at) in enumerate(_life(started, parse_time(trial) if trial else None, now))
    ]
    return [*states, event("subscription_updated", "now")]


_LS_PAID = ("paid", "refunded", "partial_refund")

_READERS = {"stripe": _stripe, "polar": _polar, "lemonsqueezy": _lemonsqueezy}
_PHASES = {"stripe": len(_LISTS), "polar": 2, "lemonsqueezy": 3}


async def revenue_history(ctx: dict[str, Any], *, connection_id: str) -> dict[str, Any]:
    """Import a connection's history (see the module); returns its final state."""
    adapters: Adapters = ctx["adapters"]
    engine: AsyncEngine = ctx["engine"]
    payments = PaymentService.wired(adapters)  # not alerted: history is not news
    settings = adapters.settings
    key = uuid.UUID(connection_id)
    async with AsyncSession(engine) as db:
        connection = await db.get(PaymentConnection, key)
        if connection is None:
            return {"status": "gone"}
        website = await db.get(Website, connection.website_id)
        api_key = SecretBox(settings.secret_key).open(connection.api_key_encrypted or "")
        days = int((connection.history or {}).get("days", DEFAULT_DAYS))
    run = _Run(engine, key, days)
    if website is None or not api_key:
        run.state.update(status="failed", error="The connection's read key cannot be read: set it again")
        await run.save(force=True)
        return run.state
    name = connection.provider
    site, currency = website.id, website.currency.upper()
    subscriptions: set[str] = set()
    await run.save(force=True)
    try:
        reader = _READERS[name](api_key, settings, run.since.timestamp(), run.now)
        async for phase, within, verified in reader:
            run.progress(phase, _PHASES[name], within)
            outcome = await payments.record(site, currency, name, verified.items)
            run.state["duplicates"] += outcome.duplicates
            for item in verified.items:
                run.state["payments" if item.kind == "payment" else "refunds"] += 1
            if verified.subscriptions:
                await payments.record_subscriptions(site, currency, name, verified.subscriptions)
                subscriptions.update(s.subscription_id for s in verified.subscriptions)
                run.state["subscriptions"] = len(subscriptions)
            await run.save()
    except HistoryFailed as exc:
        run.state.update(status="failed", error=str(exc))
    except BadSignature as exc:
        log.warning("history import failed", connection=connection_id, error=str(exc))
        run.state.update(status="failed", error=f"An object could not be read: {exc}")
    else:
        run.state.update(status="done", progress=1.0, finished_at=datetime.now(UTC).isoformat())
    await run.save(force=True)
    log.info(
        "history import finished",
        connection=connection_id,
        **{k: run.state[k] for k in ("status", "payments")},
    )
    return run.state

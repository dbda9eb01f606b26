"""History on connect: a site's last N days of Stripe payments, refunds and subscriptions, read
through Stripe's API with a restricted read key, so a new connection shows money at once.

Each object Stripe lists is turned into the webhook event it would have arrived in and goes
through the webhook path's own parsing and storing (:meth:`StripeProvider.parse`,
:class:`PaymentService`): the same keys and refs, so a payment that also arrives by webhook while
the import runs (or was delivered before it) is stored once, and importing again stores nothing
new. What is read, newest first, with the ``stripe`` package's auto-pagination:

- Checkout Sessions ``status=complete`` → ``checkout.session.completed`` (paid ones count);
- invoices ``status=paid`` → ``invoice.paid`` (subscriptions' first payments and renewals);
- charges with money refunded → ``charge.refunded`` (the cumulative refund; the delta is stored);
- subscriptions (``status=all``) → their start (trialing or active), the end of their trial, and
  their state now (canceled or ended at their own dates) for the subscription metrics.

PaymentIntents made outside Checkout and Billing are not listed (webhooks carry them). The job
(``revenue_history``, an SAQ job in scaled mode, in-process embedded) keeps its progress on the
connection (``PaymentConnection.history``): status, the share of the range read, counts, error.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from datafast.db.models import PaymentConnection, Website
from datafast.domain.revenue.providers import PROVIDERS, BadSignature
from datafast.domain.revenue.providers.stripe import StripeProvider
from datafast.domain.revenue.sealing import SecretBox
from datafast.domain.revenue.service import PaymentService
from datafast.errors import InvalidInput
from datafast.lib.adapters import Adapters
from datafast.lib.queue import JobQueue
from datafast.log import get_logger

__all__ = ("DEFAULT_DAYS", "HISTORY", "MAX_DAYS", "revenue_history", "start_history")

log = get_logger(__name__)

HISTORY = "revenue_history"
HISTORY_TIMEOUT = 3600
DEFAULT_DAYS = 90
MAX_DAYS = 730
SUPPORTED = ("stripe",)
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
    if connection.provider not in SUPPORTED:
        raise InvalidInput(f"History import is available for {', '.join(SUPPORTED)} connections")
    if not api_key.startswith(("rk_", "sk_")):
        raise InvalidInput("api_key must be a Stripe restricted key (rk_…) with read access, or a secret key")
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

    def progress(self, phase: int, created: int) -> None:
        """Lists come newest first: the share of the range read so far, by the phase's oldest item."""
        span = (self.now - self.since).total_seconds() or 1.0
        within = min(1.0, max(0.0, (self.now.timestamp() - created) / span))
        self.state["progress"] = round((phase + within) / len(_LISTS), 4)


async def _objects(client: stripe.StripeClient, which: int, since: int) -> AsyncIterator[dict[str, Any]]:
    _, _, service, filters = _LISTS[which]
    page = await service(client).list_async(params={"created": {"gte": since}, "limit": 100, **filters})
    async for item in page.auto_paging_iter():
        yield item.to_dict(recursive=True)


def _subscription_events(obj: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
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
    provider = PROVIDERS["stripe"]
    assert isinstance(provider, StripeProvider)
    site, currency = website.id, website.currency.upper()
    await run.save(force=True)
    http = stripe.HTTPXClient()
    client = stripe.StripeClient(
        api_key,
        base_addresses={"api": settings.stripe_api_base},
        http_client=http,
        max_network_retries=2,
    )
    try:
        for which, (name, kind, _, _) in enumerate(_LISTS):
            async for obj in _objects(client, which, int(run.since.timestamp())):
                created = int(obj.get("created") or 0)
                run.progress(which, created)
                if name == "subscriptions":
                    events = _subscription_events(obj, run.now)
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
                for event in events:
                    verified = provider.parse(event)
                    outcome = await payments.record(site, currency, "stripe", verified.items)
                    run.state["duplicates"] += outcome.duplicates
                    for item in verified.items:
                        run.state["payments" if item.kind == "payment" else "refunds"] += 1
                    if verified.subscriptions:
                        await payments.record_subscriptions(site, currency, "stripe", verified.subscriptions)
                run.state["subscriptions"] += name == "subscriptions"
                await run.save()
            run.progress(which + 1, int(run.now.timestamp()))
    except stripe.AuthenticationError:
        run.state.update(
            status="failed", error="Stripe refused the key: use a restricted key with read access"
        )
    except stripe.PermissionError as exc:
        run.state.update(
            status="failed", error=f"The key may not read everything needed: {exc.user_message or exc}"
        )
    except (stripe.StripeError, BadSignature) as exc:
        log.warning("history import failed", connection=connection_id, error=str(exc))
        run.state.update(status="failed", error=f"Stripe answered: {exc}")
    else:
        run.state.update(status="done", progress=1.0, finished_at=datetime.now(UTC).isoformat())
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
    await run.save(force=True)
    log.info(
        "history import finished",
        connection=connection_id,
        **{k: run.state[k] for k in ("status", "payments")},
    )
    return run.state

"""Hosted mode (``BILLING=stripe``): the account's plan and usage, Checkout, the Customer Portal,
and Stripe's billing webhooks. With billing off every route here answers 404."""

from __future__ import annotations

from typing import Any, TypeAlias

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from datafast.db.models import User
from datafast.domain.billing.accounts import account_for
from datafast.domain.billing.checkout import checkout_url, portal_url
from datafast.domain.billing.mails import notice_mail
from datafast.domain.billing.schemas import BillingRead, CheckoutCreate, RedirectRead, WebhookAck
from datafast.domain.billing.service import billing_overview
from datafast.domain.billing.webhooks import BadSignature, Outcome, apply_event, verify
from datafast.domain.reports.jobs import SEND_MAIL
from datafast.errors import InvalidInput, NotFound
from datafast.lib.adapters import Adapters
from datafast.lib.eventstore import EventStore
from datafast.server.auth import requires_session
from datafast.settings import BillingSettings, Settings

__all__ = ("BillingController", "BillingWebhookController")

Db: TypeAlias = NamedDependency[AsyncSession]


def _billing(settings: Settings) -> BillingSettings:
    if not settings.billing.enabled:
        raise NotFound("Billing is off on this DataFast (BILLING=off)")
    return settings.billing


class BillingController(Controller):
    path = "/api/v1/billing"
    tags = ["billing"]
    guards = [requires_session]

    @get("/", summary="Hosted mode: your plan, trial, usage this period and what to do")
    async def read(
        self,
        user: NamedDependency[User],
        db_session: Db,
        event_store: NamedDependency[EventStore],
        settings: NamedDependency[Settings],
    ) -> BillingRead:
        return await billing_overview(db_session, event_store, _billing(settings), user)

    @post("/checkout", status_code=HTTP_200_OK, summary="Hosted mode: a Stripe Checkout page to subscribe")
    async def checkout(
        self,
        data: JSONBody[CheckoutCreate],
        user: NamedDependency[User],
        db_session: Db,
        settings: NamedDependency[Settings],
    ) -> RedirectRead:
        billing = _billing(settings)
        account = await account_for(db_session, billing, user)
        url = await checkout_url(
            db_session, billing, user, account, data.plan, data.interval, settings.base_url
        )
        return RedirectRead(url=url)

    @post(
        "/portal",
        status_code=HTTP_200_OK,
        summary="Hosted mode: the Stripe Customer Portal (change plan or card, cancel)",
    )
    async def portal(
        self, user: NamedDependency[User], db_session: Db, settings: NamedDependency[Settings]
    ) -> RedirectRead:
        billing = _billing(settings)
        account = await account_for(db_session, billing, user)
        return RedirectRead(url=await portal_url(billing, account, settings.base_url))


class BillingWebhookController(Controller):
    path = "/webhooks/billing"
    tags = ["billing"]

    @post(
        "/stripe",
        status_code=HTTP_200_OK,
        summary="Hosted mode: Stripe's subscription and invoice events for DataFast's own billing",
    )
    async def stripe(
        self,
        request: Request[Any, Any, Any],
        db_session: Db,
        settings: NamedDependency[Settings],
        adapters: NamedDependency[Adapters],
    ) -> WebhookAck:
        billing = _billing(settings)
        body = await request.body()
        try:
            event = verify(body, request.headers.get("stripe-signature", ""), billing.stripe_webhook_secret)
        except BadSignature as exc:
            raise InvalidInput(f"Stripe signature: {exc}") from None
        try:
            outcome = await apply_event(db_session, billing, event)
            await db_session.commit()  # the event id with its effect
        except IntegrityError:  # the same event delivered twice at once: the other one applied it
            await db_session.rollback()
            outcome = Outcome(duplicate=True)
        gate = request.app.state.get("billing_gate")
        if gate is not None and not outcome.duplicate:
            gate.forget()
        for notice in outcome.notices:  # committed: mail through the job queue (retried by SAQ)
            user = await db_session.get(User, notice.user_id)
            if user is not None:
                subject, text = notice_mail(notice.kind, settings.base_url)
                await adapters.queue.enqueue(SEND_MAIL, to=user.email, subject=subject, text=text)
        return WebhookAck(received=True, duplicate=outcome.duplicate)

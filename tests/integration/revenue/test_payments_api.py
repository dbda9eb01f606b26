"""POST /api/v1/payments: payments from a server (API key), idempotent by transaction_id."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.integration.accounts.conftest import signup
from tests.integration.revenue.conftest import Client, Shop


async def _key(shop: Shop, **body: Any) -> dict[str, str]:
    response = await shop.owner.post("/api/v1/api-keys", json=body)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


async def _pay(client: Client, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post("/api/v1/payments", json=body, headers=headers)


async def test_a_payment_is_stored_once_per_transaction_id(shop: Shop) -> None:
    key = await _key(shop)
    body = {
        "website_id": shop.id,
        "amount": "19.99",
        "currency": "usd",
        "transaction_id": "tx-1",
        "visitor_id": "v1",
    }

    first = await _pay(shop.client, key, **body)
    again = await _pay(shop.client, key, **{**body, "amount": 25})

    assert first.status_code == 201, first.text
    assert first.json() == {"transaction_id": "tx-1", "stored": True, "duplicate": False}
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert await shop.stored_rows() == 1
    [payment] = await shop.payments()
    assert (payment["amount"], payment["currency"], payment["provider"], payment["visitor_id"]) == (
        1999,
        "USD",
        "api",
        "v1",
    )


async def test_refunds_and_renewals_through_the_api(shop: Shop) -> None:
    key = await _key(shop)
    await shop.visit(
        "v-api",
        path="/?utm_source=google",
        session_id="s1",
        timestamp=time.time() * 1000 - 60_000,
        sent_at=time.time() * 1000,
    )
    await shop.drained()
    await shop.wait_for_sessions(1)
    common = {"website_id": shop.id, "currency": "USD"}

    assert (
        await _pay(
            shop.client,
            key,
            **common,
            amount=50,
            transaction_id="o-1",
            visitor_id="v-api",
            subscription_id="sub-1",
        )
    ).status_code == 201
    assert (
        await _pay(
            shop.client, key, **common, amount=50, transaction_id="o-2", renewal=True, subscription_id="sub-1"
        )
    ).status_code == 201
    assert (
        await _pay(
            shop.client,
            key,
            **common,
            amount="12.50",
            transaction_id="r-1",
            refund=True,
            refunded_transaction_id="o-1",
        )
    ).status_code == 201

    payments = await shop.payments()
    assert sorted((p["kind"], p["amount"], p["visitor_id"]) for p in payments) == [
        ("payment", 5000, "v-api"),
        ("payment", 5000, "v-api"),
        ("refund", -1250, "v-api"),
    ]
    google = (await shop.attribution(model="first", dimension="utm_source"))["google"]
    assert (google["revenue"], google["new_revenue"], google["renewal_revenue"], google["refunds"]) == (
        8750,
        3750,
        5000,
        1250,
    )


async def test_the_payments_api_needs_a_key_with_write_access_to_the_site(shop: Shop, client: Client) -> None:
    body = {"website_id": shop.id, "amount": 5, "currency": "USD", "transaction_id": "tx-auth"}
    stranger = await signup(client)
    stranger_key = (await stranger.post("/api/v1/api-keys", json={})).json()["key"]
    read_only = await _key(shop, read_only=True)

    assert (await _pay(client, {}, **body)).status_code == 401
    assert (await _pay(client, {"Authorization": f"Bearer {stranger_key}"}, **body)).status_code == 404
    assert (await _pay(client, read_only, **body)).status_code == 403
    assert (
        await _pay(client, await _key(shop), **{**body, "website_id": str(uuid.uuid4())})
    ).status_code == 404
    assert await shop.stored_rows() == 0


async def test_bad_payments_are_refused_with_400(shop: Shop) -> None:
    key = await _key(shop)
    base = {"website_id": shop.id, "amount": 5, "currency": "USD", "transaction_id": "tx-bad"}
    for changes in (
        {"amount": "ten"},
        {"amount": "1e30"},  # was a 500: Int64 overflow in ClickHouse
        {"amount": 1e30},
        {"amount": "1e999999999"},  # was a 500: Decimal.quantize overflow
        {"amount": "NaN"},
        {"amount": -5},
        {"amount": 0},
        {"currency": "dollars"},
        {"transaction_id": ""},
        {"surprise": 1},
    ):
        response = await _pay(shop.client, key, **{**base, **changes})
        assert response.status_code == 400, (changes, response.text)
    assert await shop.stored_rows() == 0

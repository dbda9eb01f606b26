"""Amounts in the site's currency at the payment date: the provider's own rate when it sends one,
else the daily rate table (loaded from CSV), never today's rate; zero-decimal currencies."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from datafast.domain.revenue.rates import load_rates
from datafast.domain.revenue.store import PaymentStore
from datafast.lib.adapters import Adapters
from tests.integration.accounts.conftest import Browser
from tests.integration.revenue.conftest import Shop
from tests.integration.revenue.standins import LemonSqueezy, Shopify, StandIn

PAID_ON = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)

# The ECB's layout: the value of 1 EUR in each currency, one row a day (newest first).
ECB_CSV = """Date,USD,JPY,GBP,
2026-11-26,2.0000,100.00,0.5000,
2026-03-10,1.2500,160.00,0.8000,
2026-03-09,1.1000,150.00,0.9000,
2026-03-06,1.0000,N/A,0.7500,
"""


@pytest.fixture
async def rates(adapters: Adapters) -> None:
    await load_rates(PaymentStore(adapters.event_store), ECB_CSV, source="test-ecb")


@pytest.fixture
def currency() -> str:
    return "EUR"


async def test_a_payment_is_converted_at_its_own_days_rate(shop: Shop, standin: StandIn, rates: None) -> None:
    """1 EUR = 1.25 USD on 2026-03-10 (not 1.10 the day before, nor 2.00 today): 100 USD = 80 EUR."""
    connection = await shop.connect(standin)
    sale, deliveries = standin.payment(10000, "USD", visitor="v-fx", at=PAID_ON)
    await shop.deliver_all(connection, deliveries)

    [payment] = await shop.payments()
    assert (payment["amount"], payment["currency"]) == (10000, "USD")
    assert (payment["amount_site"], payment["site_currency"], payment["rate_source"]) == (
        8000,
        "EUR",
        "table",
    )

    # a refund months later takes back the payment's own converted amount, not today's
    await shop.deliver_all(connection, standin.refund(sale, 0, 10000))
    assert await shop.net() == 0


async def test_a_day_without_rates_uses_the_last_published_day(shop: Shop, rates: None) -> None:
    """A Sunday (2026-03-08) uses Friday's rate: 1 EUR = 1.00 USD on 2026-03-06."""
    standin = Shopify()
    connection = await shop.connect(standin)
    _, deliveries = standin.payment(5000, "USD", at=datetime(2026, 3, 8, 12, tzinfo=UTC))
    await shop.deliver_all(connection, deliveries)

    [payment] = await shop.payments()
    assert (payment["amount_site"], payment["rate_source"]) == (5000, "table")


async def test_zero_decimal_and_cross_rates(shop: Shop, rates: None) -> None:
    """JPY has no minor unit: ¥16,000 at 160 JPY/EUR is 100.00 EUR."""
    standin = Shopify()
    connection = await shop.connect(standin)
    _, deliveries = standin.payment(16000, "JPY", at=PAID_ON)
    await shop.deliver_all(connection, deliveries)

    [payment] = await shop.payments()
    assert (payment["amount"], payment["currency"], payment["amount_site"]) == (16000, "JPY", 10000)


async def test_a_missing_rate_is_flagged_then_converted_when_rates_are_loaded(
    shop: Shop, adapters: Adapters, rates: None
) -> None:
    standin = Shopify()
    connection = await shop.connect(standin)
    _, deliveries = standin.payment(5000, "ARS", at=datetime(2025, 7, 1, 9, tzinfo=UTC))
    await shop.deliver_all(connection, deliveries)

    [payment] = await shop.payments()
    assert (payment["amount"], payment["amount_site"], payment["rate_source"]) == (5000, 0, "missing")

    loaded, converted = await load_rates(
        PaymentStore(adapters.event_store), "date,base,quote,rate\n2025-07-01,ARS,EUR,1.0700\n", "test"
    )
    [payment] = await shop.payments()
    assert (loaded, converted >= 1) == (1, True)
    assert (payment["amount_site"], payment["rate_source"]) == (5350, "table")


async def test_lemon_squeezy_usd_totals_are_the_providers_own_rate(
    owner: Browser, shop: Shop, adapters: Adapters, rates: None
) -> None:
    """On a USD site a GBP order uses the order's total_usd (Lemon Squeezy converted it)."""
    site = await owner.create_site(currency="USD")
    usd_shop = Shop(shop.client, owner, site, adapters)
    standin = LemonSqueezy()
    connection = await usd_shop.connect(standin)
    _, deliveries = standin.payment(8000, "GBP", at=PAID_ON)  # the stand-in's rate: 1 GBP = 1.25 USD
    await usd_shop.deliver_all(connection, deliveries)

    [payment] = await usd_shop.payments()
    assert (payment["amount"], payment["currency"]) == (8000, "GBP")
    assert (payment["amount_site"], payment["rate_source"]) == (10000, "provider")


async def test_shopify_presentment_money_is_the_providers_own_rate(shop: Shop, rates: None) -> None:
    """A USD shop selling to a buyer in EUR: the EUR site takes the presentment amount as is."""
    standin = Shopify()
    connection = await shop.connect(standin)
    _, deliveries = standin.payment(10000, "USD", at=PAID_ON, presentment=(9123, "EUR"))
    await shop.deliver_all(connection, deliveries)

    [payment] = await shop.payments()
    assert (payment["amount"], payment["currency"]) == (10000, "USD")
    assert (payment["amount_site"], payment["rate_source"]) == (9123, "provider")


def test_rate_files_in_both_layouts_parse() -> None:
    from datafast.domain.revenue.rates import parse_rates

    ecb = parse_rates(ECB_CSV)
    long = parse_rates("date,base,quote,rate\n2026-01-02,usd,eur,0.91\n\n")

    assert (date(2026, 3, 10), "EUR", "USD", 1.25) in ecb
    assert all(row[2] != "JPY" or row[0] != date(2026, 3, 6) for row in ecb)  # N/A skipped
    assert long == [(date(2026, 1, 2), "USD", "EUR", 0.91)]
    for bad in (
        "date,base,quote,rate\n2026-01-02,USD,EUR,-1\n",
        "when,what\n1,2\n",
        "date,base,quote,rate\nx,USD,EUR,1\n",
    ):
        with pytest.raises(ValueError, match=r"line 2|expected a header"):
            parse_rates(bad)

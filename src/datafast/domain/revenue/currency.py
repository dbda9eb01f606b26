"""Money in minor units: ISO 4217 exponents, parsing decimal amounts, converting at a day's rate."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = ("MAX_MAJOR", "exponent", "from_rate", "to_minor")

MAX_DIGITS = 12
MAX_MAJOR = Decimal(10) ** MAX_DIGITS
"""Amounts are below a trillion major units: in minor units (up to 4 decimals) that fits ClickHouse's
Int64 with room to sum millions of them."""

# ISO 4217 currencies whose minor unit is not the cent (the rest have two decimals).
_EXPONENTS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(),  # noqa: SIM905
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    **dict.fromkeys(["CLF", "UYW"], 4),
}


def exponent(currency: str) -> int:
    """Decimal places of the currency's minor unit (JPY 0, USD 2, KWD 3)."""
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(amount: str | float | int | Decimal, currency: str) -> int:
    """``"12.34"`` USD → 1234; ``"500"`` JPY → 500. Raises ValueError for a non-number or an
    amount of :data:`MAX_MAJOR` or more."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise ValueError(f"not an amount: {amount!r}") from None
    if not value.is_finite():
        raise ValueError(f"not an amount: {amount!r}")
    # adjusted() (the exponent of the leading digit) needs no context: abs() or quantize() would
    # overflow the default context on "1e999999999".
    if value.adjusted() >= MAX_DIGITS:
        raise ValueError(f"amount too large: {amount!r}")
    return int((value.scaleb(exponent(currency))).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_rate(amount: int, source: str, target: str, rate: float | Decimal) -> int:
    """``amount`` minor units of ``source`` in minor units of ``target``, where 1 source = rate target."""
    major = Decimal(amount).scaleb(-exponent(source)) * Decimal(str(rate))
    return int(major.scaleb(exponent(target)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))

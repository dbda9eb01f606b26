"""Daily exchange rates from a CSV file, for payments whose payload carries no rate of its own.

DataFast never fetches rates itself (it may run offline). Two layouts are read:

- long: ``date,base,quote,rate`` (one rate a line: ``2026-01-15,USD,EUR,0.9123``);
- the European Central Bank's historical reference rates (``eurofxref-hist.csv``, from the
  ECB's "Euro foreign exchange reference rates" page, unzipped): ``Date,USD,JPY,…`` with one
  row a day, each cell the value of 1 EUR; empty or ``N/A`` cells are skipped.

Conversions between two non-euro currencies go through EUR (or USD) on the same day.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date

from datafast.domain.revenue.service import PaymentService
from datafast.domain.revenue.store import PaymentStore

__all__ = ("load_rates", "parse_rates")

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def parse_rates(text: str) -> list[tuple[date, str, str, float]]:
    """Rows ``(day, base, quote, rate)``; raises ValueError naming the first bad line."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = [cell.strip() for cell in next(reader, [])]
    rows: list[tuple[date, str, str, float]] = []
    if [h.lower() for h in header[:4]] == ["date", "base", "quote", "rate"]:
        for number, line in enumerate(reader, start=2):
            if not line or not "".join(line).strip():
                continue
            try:
                day, base, quote, rate = (cell.strip() for cell in line[:4])
                rows.append(_row(day, base.upper(), quote.upper(), rate))
            except ValueError as exc:
                raise ValueError(f"line {number}: {exc}") from None
        return rows
    if header and header[0].lower() == "date" and all(_CURRENCY.match(h) for h in header[1:] if h):
        for number, line in enumerate(reader, start=2):
            if not line or not line[0].strip():
                continue
            for quote, cell in zip(header[1:], line[1:], strict=False):
                cell = cell.strip()
                if quote and cell and cell.upper() != "N/A":
                    try:
                        rows.append(_row(line[0].strip(), "EUR", quote, cell))
                    except ValueError as exc:
                        raise ValueError(f"line {number}: {exc}") from None
        return rows
    raise ValueError("expected a header date,base,quote,rate or the ECB's Date,USD,JPY,…")


def _row(day: str, base: str, quote: str, rate: str) -> tuple[date, str, str, float]:
    if not (_CURRENCY.match(base) and _CURRENCY.match(quote)):
        raise ValueError(f"not ISO currency codes: {base!r}, {quote!r}")
    value = float(rate)
    if not value > 0:
        raise ValueError(f"rate must be positive: {rate!r}")
    return date.fromisoformat(day), base, quote, value


async def load_rates(store: PaymentStore, text: str, source: str) -> tuple[int, int]:
    """Parse and store the rates (loading a day again replaces its rate), then convert the
    payments that were waiting for them; returns (rates loaded, payments converted)."""
    rows = parse_rates(text)
    for start in range(0, len(rows), 50_000):
        await store.load_rates(rows[start : start + 50_000], source)
    return len(rows), await PaymentService(store).convert_missing()

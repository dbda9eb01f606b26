"""Daily exchange rates from a CSV file, for payments whose payload carries no rate of its own.

The ECB's history ships with the install (:mod:`datafast.domain.revenue.ecb`); newer rates come
from ``datafast rates load FILE`` or, where the operator allows a download (``RATES_URL``, e.g.
the ECB's ``eurofxref-hist.zip``), from the daily ``rates_refresh`` job. Otherwise DataFast never
fetches rates (it may run offline). Two layouts are read:

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
import zipfile
from datetime import date
from typing import Any

import httpx

from datafast.domain.revenue.service import PaymentService
from datafast.domain.revenue.store import PaymentStore
from datafast.lib.adapters import Adapters

__all__ = ("RATES_CRON", "RATES_REFRESH", "load_rates", "parse_rates", "rates_refresh")

RATES_REFRESH = "rates_refresh"
RATES_CRON = "20 16 * * *"
"""Daily (UTC), after the ECB publishes the day's reference rates (around 16:00 CET)."""
MAX_DOWNLOAD = 50 * 1024 * 1024

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


async def download_rates(url: str) -> str:
    """The rates file at ``url``: a CSV, or a zip holding one (as the ECB publishes it)."""
    data = bytearray()
    async with (
        httpx.AsyncClient(follow_redirects=True, timeout=60) as http,
        http.stream("GET", url) as answer,
    ):
        if answer.status_code != 200:
            raise ValueError(f"{url} answered {answer.status_code}")
        async for chunk in answer.aiter_bytes():
            data += chunk
            if len(data) > MAX_DOWNLOAD:
                raise ValueError(f"{url} is larger than {MAX_DOWNLOAD // 2**20} MB")
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if not names:
                raise ValueError(f"{url} is a zip without a CSV file")
            data = bytearray(archive.read(names[0]))
    return bytes(data).decode("utf-8")


async def rates_refresh(ctx: dict[str, Any], **_: Any) -> dict[str, Any]:
    """Download ``RATES_URL`` and load it (a day loaded again is replaced); off when it is unset."""
    adapters: Adapters = ctx["adapters"]
    url = adapters.settings.rates_url
    if not url:
        return {"skipped": "RATES_URL is not set"}
    text = await download_rates(url)
    loaded, converted = await load_rates(PaymentStore(adapters.event_store), text, source=url)
    return {"loaded": loaded, "converted": converted}

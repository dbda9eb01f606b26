"""Imported history (``imported_daily``, see :mod:`datafast.domain.imports`) merged into reports.

Plausible's approach: imported data counts for the site-local days **before the site's first
native event** (all of its days when the site has no native event yet), so a day is never
counted from both. Within such a range the Stats API adds the imported sums to the native ones:

- metrics ``visitors``, ``visits``, ``pageviews``, and ``views_per_visit``, ``bounce_rate``,
  ``visit_duration`` recomputed from the summed pageviews, bounces and durations. Visitors are
  summed per day (each tool's daily distinct count), as Plausible does: over a range a visitor
  who came on two imported days counts twice. Other metrics (events, goals, money) have no
  imported data and are native only;
- totals, time series by ``day``, ``week`` and ``month``, and breakdowns by ``source``,
  ``page``, ``entry_page``, ``exit_page``, ``country``, ``device``, ``browser`` and ``os``.

Not merged (the answer's ``imported`` field says so, with ``included: false``): queries with
any filter, ``hour`` intervals, breakdowns by any other dimension or by two dimensions, visitor
lists and profiles, funnels, goals and the revenue reports, and the previous period's rows of a
compared breakdown (its totals are merged). A merged breakdown is ranked over the first
:data:`MAX_NATIVE_ROWS` native values and every imported one. The goals report's conversion rate
divides by all visitors of the range, imported ones included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from datafast.domain.analytics.queries import Interval, QuerySpec

__all__ = (
    "MAX_NATIVE_ROWS",
    "MERGED_DIMENSIONS",
    "MERGED_METRICS",
    "bucket_of",
    "merge_row",
    "needed_metrics",
    "not_merged_reason",
    "sort_rows",
    "window",
)

MERGED_METRICS = frozenset(
    {"visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"}
)
MERGED_DIMENSIONS = frozenset(
    {"source", "page", "entry_page", "exit_page", "country", "device", "browser", "os"}
)
MAX_NATIVE_ROWS = 10_000
_SUMS = ("visitors", "visits", "pageviews", "bounces", "duration")


def local_days(spec: QuerySpec) -> tuple[date, date]:
    """The first and last site-local day of the query's ``[start, end)``."""
    zone = ZoneInfo(spec.timezone)
    return spec.start.astimezone(zone).date(), (spec.end - timedelta(microseconds=1)).astimezone(zone).date()


def not_merged_reason(spec: QuerySpec) -> str | None:
    """Why imported data cannot answer this query (None: it can)."""
    if spec.filters:
        return "imported data is not filtered: not included under a filter"
    if spec.interval == "hour":
        return "imported data is daily: not included in hourly series"
    if len(spec.dimensions) > 1 or any(d.name not in MERGED_DIMENSIONS for d in spec.dimensions):
        return f"imported data is broken down by {', '.join(sorted(MERGED_DIMENSIONS))} only"
    if not MERGED_METRICS & set(spec.metrics):
        return "imported data has none of the metrics asked for"
    return None


def window(spec: QuerySpec, bounds: tuple[date, date, date | None]) -> tuple[date, date] | None:
    """The local days of the query that imported data answers, or None."""
    imported_first, imported_last, first_native = bounds
    first, last = local_days(spec)
    first, last = max(first, imported_first), min(last, imported_last)
    if first_native is not None:
        last = min(last, first_native - timedelta(days=1))
    return (first, last) if first <= last else None


def needed_metrics(spec: QuerySpec) -> tuple[str, ...]:
    """The query's metrics plus the native ones a merge needs to recompute ratios."""
    extra = ["visitors", "visits", "pageviews"]
    if spec.scope == "session":
        extra += ["bounce_rate", "visit_duration"]
    return tuple(dict.fromkeys([*spec.metrics, *extra]))


def _native_sums(row: Mapping[str, Any]) -> dict[str, float]:
    visits = float(row.get("visits", 0))
    return {
        "visitors": float(row.get("visitors", 0)),
        "visits": visits,
        "pageviews": float(row.get("pageviews", 0)),
        "bounces": round(float(row.get("bounce_rate", 0)) * visits),
        "duration": round(float(row.get("visit_duration", 0)) * visits),
    }


def merge_row(
    native: Mapping[str, Any] | None, imported: Mapping[str, Any], metrics: Sequence[str]
) -> dict[str, Any]:
    """``metrics`` of a native row (or none) with imported sums added; other metrics native (or 0)."""
    sums = _native_sums(native or {})
    for name in _SUMS:
        sums[name] += float(imported.get(name, 0))
    visits = sums["visits"]
    merged = {
        "visitors": int(sums["visitors"]),
        "visits": int(visits),
        "pageviews": int(sums["pageviews"]),
        "views_per_visit": sums["pageviews"] / visits if visits else 0.0,
        "bounce_rate": sums["bounces"] / visits if visits else 0.0,
        "visit_duration": sums["duration"] / visits if visits else 0.0,
    }
    out = dict(native or {})
    for metric in metrics:
        out[metric] = merged[metric] if metric in MERGED_METRICS else (native or {}).get(metric, 0)
    return out


def bucket_of(day: date, interval: Interval) -> str:
    """A day's bucket label, as ``dates.bucket_labels`` writes it."""
    if interval == "week":
        day -= timedelta(days=day.weekday())
    elif interval == "month":
        day = day.replace(day=1)
    return day.isoformat()


def sort_rows(rows: list[dict[str, Any]], spec: QuerySpec) -> list[dict[str, Any]]:
    """Rows in the query's order (as ``queries._order``): its order_by, else the first metric
    descending, then the dimension ascending."""
    order = [(name, direction) for name, direction in spec.order_by]
    if not order and spec.metrics:
        order.append((f"m_{spec.metrics[0]}", "desc"))
    if all(name != "d0" for name, _ in order):
        order.append(("d0", "asc"))
    for name, direction in reversed(order):
        key = name[2:] if name.startswith("m_") else name
        rows.sort(key=partial(_sort_value, key=key), reverse=direction == "desc")
    return rows


def _sort_value(row: Mapping[str, Any], key: str) -> tuple[bool, str] | float:
    value = row.get(key)
    if key.startswith("d") and key[1:].isdigit():
        return (value is None, "" if value is None else str(value))
    return float(value or 0)

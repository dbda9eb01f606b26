"""Report dates: site-local calendar days as UTC instants, buckets, and the attribution report's window.

Date ranges are calendar days in the site's timezone, turned into UTC instants with the
timezone's rules for each day, so days of 23 or 25 hours (DST) are exact. Every report is
bounded: no day before 2000-01-01, none more than a year ahead, at most ``MAX_DAYS`` days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from datafast.domain.analytics.schemas import DateRange, Interval, Period, ResolvedRange
from datafast.errors import InvalidInput

__all__ = (
    "EARLIEST_DAY",
    "MAX_DAYS",
    "attribution_window",
    "bucket_labels",
    "local_days",
    "previous_period",
    "resolve_range",
    "whole_hour_offsets",
)


def _invalid(key: str, message: str) -> InvalidInput:
    return InvalidInput(message, extra={"errors": [{"key": key, "message": message}]})


MAX_DAYS = 5 * 366
EARLIEST_DAY = date(2000, 1, 1)
"""No report reads days before this (nor the attribution report instants before it)."""
MAX_DAYS_AHEAD = 366
"""A custom range may end up to a year ahead (e.g. "this year"); later days cannot have data."""


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _invalid("timezone", f"{name!r} is not a timezone") from None


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def resolve_range(value: DateRange | Period, timezone: str, now: datetime) -> ResolvedRange:
    """Site-local days → ``[start_utc, end_utc)``; presets end today (site-local) inclusive."""
    zone = _zone(timezone)
    today = now.astimezone(zone).date()
    if isinstance(value, DateRange):
        start, end = value.start, value.end
    elif value == "today":
        start = end = today
    elif value == "yesterday":
        start = end = today - timedelta(days=1)
    elif value.endswith("d"):
        start, end = today - timedelta(days=int(value[:-1]) - 1), today
    elif value == "month":
        start, end = today.replace(day=1), today
    elif value == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        start = end.replace(day=1)
    else:  # 12mo
        start, end = (today.replace(day=1) - timedelta(days=335)).replace(day=1), today
    if end < start:
        raise _invalid("date_range", "date_range.end is before date_range.start")
    # Bounded so the range is a real one (no overflow at year 9999, no scans of empty decades).
    if start < EARLIEST_DAY or end > today + timedelta(days=MAX_DAYS_AHEAD):
        raise _invalid(
            "date_range",
            f"dates must be between {EARLIEST_DAY.isoformat()} and {MAX_DAYS_AHEAD} days after today",
        )
    if (end - start).days >= MAX_DAYS:
        raise _invalid("date_range", f"date ranges are limited to {MAX_DAYS} days")
    return ResolvedRange(
        start=start,
        end=end,
        timezone=timezone,
        start_utc=_local_midnight(start, zone),
        end_utc=_local_midnight(end + timedelta(days=1), zone),
    )


def previous_period(current: ResolvedRange) -> ResolvedRange:
    days = (current.end - current.start).days + 1
    return resolve_range(
        DateRange(start=current.start - timedelta(days=days), end=current.start - timedelta(days=1)),
        current.timezone,
        current.end_utc,
    )


def bucket_labels(range_: ResolvedRange, interval: Interval) -> list[str]:
    """Every bucket of the range, in order, labelled as the SQL labels them (see queries._BUCKETS)."""
    zone = ZoneInfo(range_.timezone)
    labels: list[str] = []
    if interval == "hour":
        moment = range_.start_utc
        while moment < range_.end_utc:
            local = moment.astimezone(zone).replace(minute=0, second=0, microsecond=0)
            labels.append(local.strftime("%Y-%m-%dT%H:00%z"))
            moment += timedelta(hours=1)
    else:
        day = range_.start
        while day <= range_.end:
            if interval == "day":
                labels.append(day.isoformat())
            elif interval == "week":
                labels.append((day - timedelta(days=day.weekday())).isoformat())
            else:
                labels.append(day.replace(day=1).isoformat())
            day += timedelta(days=1)
    return list(dict.fromkeys(labels))


def whole_hour_offsets(timezone: str, start: datetime, end: datetime) -> bool:
    """True when every local day boundary of ``[start, end)`` falls on a UTC hour (hourly rollups fit)."""
    zone = ZoneInfo(timezone)
    moment = start
    while moment <= end:
        offset = moment.astimezone(zone).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
        moment += timedelta(hours=12)
    return start.minute == start.second == end.minute == end.second == 0


def local_days(
    timezone: str, start: datetime, end: datetime
) -> tuple[list[tuple[int, date, date]], list[tuple[datetime, datetime]]]:
    """``[start, end)`` split for the rollups by local day (0009_rollups_local_days): runs of whole
    local days at one UTC offset, as ``(offset seconds, first day, day after the last)``, and the
    UTC spans left (a day whose offset changes, a part of a day) as ``(start, end)``."""
    zone = ZoneInfo(timezone)
    runs: list[tuple[int, date, date]] = []
    spans: list[tuple[datetime, datetime]] = []
    day = start.astimezone(zone).date()
    while (low := _local_midnight(day, zone)) < end:
        high = _local_midnight(day + timedelta(days=1), zone)
        offset = low.astimezone(zone).utcoffset()
        whole = start <= low and high <= end and high - low == timedelta(days=1)
        if (
            whole
            and offset is not None
            and offset == (high - timedelta(seconds=1)).astimezone(zone).utcoffset()
        ):
            seconds = int(offset.total_seconds())
            if runs and runs[-1][0] == seconds and runs[-1][2] == day:
                runs[-1] = (seconds, runs[-1][1], day + timedelta(days=1))
            else:
                runs.append((seconds, day, day + timedelta(days=1)))
        elif max(low, start) < min(high, end):
            first, last = max(low, start), min(high, end)
            if spans and spans[-1][1] == first:
                first = spans.pop()[0]
            spans.append((first, last))
        day += timedelta(days=1)
    return runs, spans


EARLIEST = datetime.combine(EARLIEST_DAY, time(0), tzinfo=UTC)
MAX_AHEAD = timedelta(days=366)
DEFAULT_DAYS = 30


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def attribution_window(
    date_from: datetime | None, date_to: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """``[from, to)`` of a report: ``to`` defaults to now rounded up to the minute (so repeated
    requests share a cached result), ``from`` to 30 days before ``to``. Raises 400 out of bounds."""
    try:
        if date_to is None:
            end = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
        else:
            end = _aware(date_to).astimezone(UTC)
        if end > now + MAX_AHEAD:
            raise _invalid("to", "to must not be more than a year from now")
        if end <= EARLIEST:
            raise _invalid("to", f"to must be after {EARLIEST.date().isoformat()}")
        start = (
            _aware(date_from).astimezone(UTC)
            if date_from is not None
            else max(end - timedelta(days=DEFAULT_DAYS), EARLIEST)
        )
    except OverflowError:  # an offset pushing year 1 or 9999 out of range
        raise _invalid("from", "from and to must be dates between 2000 and now") from None
    if start < EARLIEST:
        raise _invalid("from", f"from must not be before {EARLIEST.date().isoformat()}")
    if start >= end:
        raise _invalid("from", "from must be before to")
    if end - start > timedelta(days=MAX_DAYS):
        raise _invalid("from", f"the window is limited to {MAX_DAYS} days")
    return start, end

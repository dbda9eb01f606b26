"""An enriched event as stored: one ClickHouse ``events`` row, encoded as a JSONEachRow line; a
tracker ``scroll`` report as one ``page_scrolls`` row, a JSONEachRow line after a one-byte tag."""

from __future__ import annotations

import msgspec

__all__ = (
    "EVENT_COLUMNS",
    "SCROLL_COLUMNS",
    "SCROLL_TAG",
    "EventRow",
    "ScrollRow",
    "encode_row",
    "encode_scroll",
    "identified_in",
)


class EventRow(msgspec.Struct, array_like=False):
    website_id: str
    event_id: str
    event_type: str
    event_name: str
    timestamp: float
    """Epoch seconds with millisecond precision (how JSONEachRow reads DateTime64(3))."""
    visitor_id: str
    session_id: str
    hostname: str
    pathname: str
    page_url: str
    referrer: str
    referrer_source: str
    channel: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    utm_term: str
    utm_content: str
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str
    country: str
    region: str
    city: str
    goal_name: str
    props: dict[str, str]
    revenue: int
    currency: str


EVENT_COLUMNS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(EventRow))
_encoder = msgspec.json.Encoder()


def encode_row(row: EventRow) -> bytes:
    return _encoder.encode(row) + b"\n"


class ScrollRow(msgspec.Struct):
    """How far down a page a visitor got (``page_scrolls``, ClickHouse migration 0010)."""

    website_id: str
    timestamp: float
    visitor_id: str
    hostname: str
    pathname: str
    depth: int
    """0 to 100: % of the page's height."""


SCROLL_COLUMNS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(ScrollRow))
SCROLL_TAG = b"D"


def encode_scroll(row: ScrollRow) -> bytes:
    return SCROLL_TAG + _encoder.encode(row) + b"\n"


_decoder = msgspec.json.Decoder(EventRow)
_IDENTIFY = b'"event_type":"identify"'


def identified_in(blob: bytes) -> dict[str, set[str]]:
    """The email hashes of the ``identify`` events in a batch's rows, by site: what payments stored
    before them may now be linked to (from the rows, so a batch replayed after a crash links too)."""
    identified: dict[str, set[str]] = {}
    if _IDENTIFY not in blob:
        return identified
    for line in blob.splitlines():
        if line.startswith(b"{") and _IDENTIFY in line:
            row = _decoder.decode(line)
            if hashed := row.props.get("email_hash"):
                identified.setdefault(row.website_id, set()).add(hashed)
    return identified

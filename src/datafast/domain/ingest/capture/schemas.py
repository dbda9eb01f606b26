"""What the tracker (or any client) may send to POST /track, and how bad input is reported.

The happy path is one typed msgspec decode. Only when it fails is the body decoded again
loosely and checked field by field, so that a 400 names every bad field, not just the first.
Whatever the bytes (invalid UTF-8, truncated JSON, nesting thousands deep), the outcome is the
events or :class:`InvalidBody`, never another exception.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import msgspec
from msgspec import Meta

__all__ = ("MAX_BATCH", "MAX_BODY", "Envelope", "FieldError", "TrackEvent", "decode_events")

MAX_BODY = 64 * 1024
MAX_BATCH = 100
MAX_PROPS = 10

Short = Annotated[str, Meta(max_length=100)]
Medium = Annotated[str, Meta(max_length=200)]
Url = Annotated[str, Meta(min_length=1, max_length=2048)]
Identifier = Annotated[str, Meta(min_length=1, max_length=64)]
PropValue = Annotated[str, Meta(max_length=255)] | int | float | bool
PropKey = Annotated[str, Meta(min_length=1, max_length=64)]
EventName = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_:.\- ]+$")]


class TrackEvent(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=True):
    """One event. Browser, OS, device and country are derived on the server, never taken from here."""

    website_id: Annotated[str, Meta(min_length=1, max_length=36)]
    page_url: Url
    event_type: EventName = "pageview"
    event_id: Identifier | None = None
    """A client-made id: a retried send with the same id is stored once."""
    visitor_id: Identifier | None = None
    session_id: Identifier | None = None
    timestamp: Annotated[float, Meta(ge=0)] | None = None
    """Client time in epoch milliseconds; used only with the request's ``sent_at``."""
    sent_at: Annotated[float, Meta(ge=0)] | None = None
    referrer: Annotated[str, Meta(max_length=2048)] | None = None
    utm_source: Short | None = None
    utm_medium: Short | None = None
    utm_campaign: Medium | None = None
    utm_term: Medium | None = None
    utm_content: Medium | None = None
    goal_name: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    revenue: Annotated[float, Meta(ge=0, le=1e12)] | None = None
    """Major units (e.g. 9.99 dollars); stored in minor units."""
    currency: Annotated[str, Meta(pattern=r"^[A-Za-z]{3}$")] | None = None
    props: Annotated[dict[PropKey, PropValue], Meta(max_length=MAX_PROPS)] | None = None


class Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """A batch with its send time: ``{"sent_at": 1700000000000, "events": [...]}``."""

    events: Annotated[list[TrackEvent], Meta(min_length=1, max_length=MAX_BATCH)]
    sent_at: Annotated[float, Meta(ge=0)] | None = None


class FieldError(msgspec.Struct):
    key: str
    message: str


Body = Envelope | list[TrackEvent] | TrackEvent
_decoder = msgspec.json.Decoder(Annotated[list[TrackEvent], Meta(min_length=1, max_length=MAX_BATCH)])
_single = msgspec.json.Decoder(TrackEvent)
_envelope = msgspec.json.Decoder(Envelope)
_loose = msgspec.json.Decoder()


class InvalidBody(ValueError):
    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.key}: {e.message}" for e in errors))
        self.errors = errors


def decode_events(body: bytes) -> tuple[list[TrackEvent], float | None, bool]:
    """Decode a body into (events, sent_at, was_batch). Raises :class:`InvalidBody`."""
    first = body.lstrip()[:1]
    try:
        if not body.isascii():
            # msgspec checks UTF-8 only in the strings it keeps: bad bytes in a skipped unknown
            # field would pass. The whole body must be UTF-8 (isascii() keeps the usual case free).
            body.decode()
        if first == b"[":
            return _decoder.decode(body), None, True
        if first == b"{":
            if b'"events"' in body:
                envelope = _envelope.decode(body)
                return envelope.events, envelope.sent_at, True
            event = _single.decode(body)
            return [event], event.sent_at, False
    except msgspec.ValidationError:
        raise InvalidBody(list(_explain(body))) from None
    except msgspec.DecodeError as exc:
        raise InvalidBody([FieldError("body", f"not valid JSON: {exc}")]) from None
    except UnicodeDecodeError:  # msgspec raises it (not DecodeError) for invalid UTF-8 in a string
        raise InvalidBody([FieldError("body", "not valid UTF-8")]) from None
    except RecursionError:  # msgspec's own depth guard: ``[[[[…`` thousands deep
        raise InvalidBody([FieldError("body", "nested too deeply")]) from None
    raise InvalidBody([FieldError("body", "expected a JSON object or an array of events")])


_FIELDS = {field.name: field for field in msgspec.structs.fields(TrackEvent)}


def _explain(body: bytes) -> Iterator[FieldError]:
    """Every problem in a body the typed decoder refused, with a path such as ``events[2].utm_source``."""
    try:
        data = _loose.decode(body)
    except msgspec.DecodeError as exc:  # pragma: no cover - the typed decoder reports these first
        yield FieldError("body", f"not valid JSON: {exc}")
        return
    except UnicodeDecodeError:  # a type error came before the bad bytes in the typed decode
        yield FieldError("body", "not valid UTF-8")
        return
    except RecursionError:  # a type error came before the deep nesting in the typed decode
        yield FieldError("body", "nested too deeply")
        return
    if isinstance(data, dict) and "events" in data:
        for key in set(data) - {"events", "sent_at"}:
            yield FieldError(key, "unknown field in a batch envelope")
        if "sent_at" in data:
            yield from _check("sent_at", data["sent_at"], Annotated[float, Meta(ge=0)] | None)
        events, prefix = data["events"], "events"
    elif isinstance(data, dict):
        yield from _check_event("", data)
        return
    else:
        events, prefix = data, ""
    if not isinstance(events, list) or not 1 <= len(events) <= MAX_BATCH:
        yield FieldError(prefix or "body", f"expected an array of 1 to {MAX_BATCH} events")
        return
    for index, event in enumerate(events):
        yield from _check_event(f"{prefix}[{index}].", event)


def _check_event(prefix: str, event: Any) -> Iterator[FieldError]:
    if not isinstance(event, dict):
        yield FieldError(prefix.rstrip(".") or "body", "expected an event object")
        return
    for name, field in _FIELDS.items():
        if name in event:
            yield from _check(prefix + name, event[name], field.type)
        elif field.required:
            yield FieldError(prefix + name, "is required")


def _check(key: str, value: Any, annotation: Any) -> Iterator[FieldError]:
    try:
        msgspec.convert(value, annotation, strict=True)
    except msgspec.ValidationError as exc:
        message = str(exc)
        # msgspec appends " - at `$...`" for nested paths (props); keep it readable.
        message = message.replace(" - at `$`", "").replace("`$", "`" + key)
        yield FieldError(key, message)

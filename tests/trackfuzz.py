"""Hostile ``/track`` bodies, made from a ``random.Random``: what tests/integration/ingest/
test_track_fuzz.py (through Hypothesis' ``st.randoms()``) and ``bench/fuzz_track.py`` send.

Kinds: random bytes, a valid event with invalid UTF-8 spliced into a string, truncated JSON,
deep nesting (arrays and objects, up to tens of thousands deep), huge strings (under and over
the 64 KiB body limit), a valid event or batch with random field values, and plain valid events.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

__all__ = ("FIELDS", "KINDS", "make_body")

FIELDS = [
    "website_id",
    "page_url",
    "event_type",
    "event_id",
    "visitor_id",
    "session_id",
    "timestamp",
    "sent_at",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "goal_name",
    "revenue",
    "currency",
    "props",
    "events",
]
_BAD_UTF8 = [
    b"\xff",
    b"\xfe",
    b"\xc3\x28",
    b"\xa0\xa1",
    b"\xe2\x28\xa1",
    b"\xf0\x28\x8c\xbc",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
]
_URLS = [
    "http://[x/",
    "http://[::1/",
    "https://{d}:99999/",
    "https://{d}:-1/",
    "https://user:pw@{d}/a?b=c#d",
    "//{d}/",
    "javascript:alert(1)",
    "https://{d}/\u0000",
    "https://{d}/" + "\u202e" * 10,
    "https://xn--{d}/",
    "https://{d}/%ff%fe",
    "https://{d}/#!/route",
]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**63, -(2**63) - 1, 10**30, rng.randrange(-(10**6), 10**6)])
    if kind == 3:
        return rng.choice([0.5, -0.0, 1e308, -1e308, 1e-320, rng.uniform(-1e12, 1e12)])
    if kind == 4:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(0, 40)))
    if kind == 5:
        return rng.choice(["", " ", "\u0000", "\ud7ff", "x" * rng.randrange(0, 3000)])
    if kind in (6, 7):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    return {str(_value(rng, 3))[:20]: _value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}


def _event(rng: random.Random, site: str, domain: str) -> dict[str, Any]:
    event: dict[str, Any] = {"website_id": site, "page_url": f"https://{domain}/p{rng.randrange(50)}"}
    if rng.random() < 0.3:
        event["page_url"] = rng.choice(_URLS).replace("{d}", domain)
    if rng.random() < 0.3:
        event["referrer"] = rng.choice(_URLS).replace("{d}", "ref.example")
    return event


def _random_bytes(rng: random.Random, site: str, domain: str) -> bytes:
    return rng.randbytes(rng.randrange(0, 2000))


def _invalid_utf8(rng: random.Random, site: str, domain: str) -> bytes:
    body = json.dumps(_event(rng, site, domain) | {"utm_source": "abcdef"}).encode()
    cut = body.index(b"abcdef") + rng.randrange(0, 6)
    if rng.random() < 0.3:  # anywhere, not only inside a string
        cut = rng.randrange(len(body))
    return body[:cut] + rng.choice(_BAD_UTF8) + body[cut:]


def _truncated(rng: random.Random, site: str, domain: str) -> bytes:
    events = [_event(rng, site, domain) for _ in range(rng.randrange(1, 4))]
    body = json.dumps(events if len(events) > 1 else events[0]).encode()
    return body[: rng.randrange(0, len(body))]


def _deep(rng: random.Random, site: str, domain: str) -> bytes:
    depth = rng.choice([100, 1000, 5000, 20000, 30000])
    if rng.random() < 0.5:
        return b"[" * depth + b"]" * depth
    inner = b'{"a":' * depth + b"1" + b"}" * depth
    prefix = json.dumps(_event(rng, site, domain))[:-1].encode()
    return prefix + b', "props": ' + inner[:60_000] + b"}"


def _huge(rng: random.Random, site: str, domain: str) -> bytes:
    size = rng.choice([10_000, 60_000, 65_000, 70_000, 300_000, 1_000_000])
    field = rng.choice(["page_url", "referrer", "utm_source", "goal_name", "unknown"])
    return json.dumps(_event(rng, site, domain) | {field: "x" * size}).encode()


def _fields(rng: random.Random, site: str, domain: str) -> bytes:
    def one() -> dict[str, Any]:
        event = _event(rng, site, domain)
        for name in rng.sample(FIELDS, rng.randrange(0, 6)):
            event[name] = _value(rng)
        return event

    if rng.random() < 0.3:
        return json.dumps([one() for _ in range(rng.randrange(0, 5))]).encode()
    if rng.random() < 0.2:
        return json.dumps(
            {"sent_at": _value(rng), "events": [one() for _ in range(rng.randrange(0, 3))]}
        ).encode()
    return json.dumps(one()).encode()


def _valid(rng: random.Random, site: str, domain: str) -> bytes:
    event = {
        "website_id": site,
        "page_url": f"https://{domain}/v{rng.randrange(20)}",
        "event_id": rng.randbytes(8).hex(),
    }
    return json.dumps(event).encode()


KINDS: dict[str, Callable[[random.Random, str, str], bytes]] = {
    "random_bytes": _random_bytes,
    "invalid_utf8": _invalid_utf8,
    "truncated": _truncated,
    "deep": _deep,
    "huge": _huge,
    "fields": _fields,
    "valid": _valid,
}
_WEIGHTS = [20, 20, 15, 8, 5, 27, 5]


def make_body(rng: random.Random, site: str, domain: str) -> tuple[str, bytes]:
    """(kind, body) of one request."""
    kind = rng.choices(list(KINDS), weights=_WEIGHTS)[0]
    return kind, KINDS[kind](rng, site, domain)

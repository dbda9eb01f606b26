"""Capture: POST /track up to the durable log (see ``service``)."""

from datafast.domain.ingest.capture.service import (
    Accepted,
    Capture,
    Captured,
    CapturedEvent,
    EventLog,
    Overloaded,
    Rejected,
    RequestInfo,
    SiteNotFound,
    decode_captured,
    split_url,
)

__all__ = (
    "Accepted",
    "Capture",
    "Captured",
    "CapturedEvent",
    "EventLog",
    "Overloaded",
    "Rejected",
    "RequestInfo",
    "SiteNotFound",
    "decode_captured",
    "split_url",
)

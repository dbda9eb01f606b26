"""Capture: POST /track up to the durable log (see ``service``)."""

from datafast.domain.ingest.capture.service import (
    Accepted,
    AdmissionGate,
    Capture,
    Captured,
    CapturedEvent,
    EventLog,
    Overloaded,
    PaymentRequired,
    Rejected,
    RequestInfo,
    SiteNotFound,
    decode_captured,
    split_url,
)

__all__ = (
    "Accepted",
    "AdmissionGate",
    "Capture",
    "Captured",
    "CapturedEvent",
    "EventLog",
    "Overloaded",
    "PaymentRequired",
    "Rejected",
    "RequestInfo",
    "SiteNotFound",
    "decode_captured",
    "split_url",
)

"""GET /metrics: Prometheus text exposition of the ingest counters.

Not public: with ``METRICS_TOKEN`` set, a scraper sends ``Authorization: Bearer <token>``
(else 401). Without it, only loopback peers (a scraper or ``curl`` on the same host) are
answered, and not when the request came through a reverse proxy (it carries forwarding headers,
and the proxy's own loopback address says nothing about the real client): 403 otherwise.
"""

from __future__ import annotations

import hmac
import ipaddress
import statistics
from collections.abc import Iterable, Mapping
from typing import Any

from litestar import Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers import BaseRouteHandler

from datafast.domain.ingest.pipeline import IngestPipeline
from datafast.domain.ingest.spool import FileSpool
from datafast.domain.ingest.stream import batch_stats
from datafast.errors import Forbidden, Unauthorized
from datafast.lib.adapters import Adapters
from datafast.settings import Settings

__all__ = ("metrics",)

Sample = tuple[float, Mapping[str, str]]


def _family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for value, labels in samples:
        rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        lines.append(f"{name}{{{rendered}}} {value}" if rendered else f"{name} {value}")
    return lines


FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def metrics_access(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the bearer ``METRICS_TOKEN``, or (unset) a direct loopback peer."""
    settings: Settings = connection.app.state.settings
    if settings.metrics_token is not None:
        scheme, _sep, sent = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            sent.strip().encode(), settings.metrics_token.encode()
        ):
            raise Unauthorized("Send Authorization: Bearer <METRICS_TOKEN>")
        return
    peer = connection.client.host if connection.client else None
    if not _is_loopback(peer) or any(connection.headers.get(h) for h in FORWARDING_HEADERS):
        raise Forbidden("/metrics is served to this host only; set METRICS_TOKEN to scrape it remotely")


def _by(label: str, counts: Mapping[str, int]) -> list[Sample]:
    return [(n, {label: key}) for key, n in sorted(counts.items())]


@get("/metrics", include_in_schema=False, cache=False, guards=[metrics_access])
async def metrics(state: State) -> Response[str]:
    pipeline: IngestPipeline = state.ingest_pipeline
    m = pipeline.metrics
    batches, rows, seconds = m.batches, m.batch_rows, m.batch_seconds
    if pipeline.writer is None:
        # Scaled mode: the workers insert, and record their batches in Valkey for every web process.
        adapters: Adapters = state.adapters
        if adapters.valkey is not None:
            batches, rows, seconds = await batch_stats(adapters.valkey)
    recent = sorted(seconds)
    latency: list[Sample] = []
    if recent:
        latency = [
            (statistics.median(recent), {"quantile": "0.5"}),
            (recent[min(len(recent) - 1, int(len(recent) * 0.99))], {"quantile": "0.99"}),
        ]
    lines = [
        *_family(
            "datafast_events_accepted_total", "counter", "Events accepted and spooled.", [(m.accepted, {})]
        ),
        *_family(
            "datafast_events_duplicate_total",
            "counter",
            "Retried events recognised as already accepted.",
            [(m.duplicates, {})],
        ),
        *_family(
            "datafast_events_dropped_total",
            "counter",
            "Events answered 202 but not stored, by reason.",
            _by("reason", m.dropped),
        ),
        *_family(
            "datafast_requests_rejected_total",
            "counter",
            "Requests refused, by reason.",
            _by("reason", m.rejected),
        ),
        *_family(
            "datafast_spool_depth",
            "gauge",
            "Events (scaled mode: requests) durable in the spool, not yet in ClickHouse.",
            [(await pipeline.depth(), {})],
        ),
        *_family(
            "datafast_spool_syncs_total",
            "counter",
            "Group commits (one write + fdatasync each) to the spool.",
            [(pipeline.spool.syncs if isinstance(pipeline.spool, FileSpool) else 0, {})],
        ),
        *_family(
            "datafast_insert_batches_total",
            "counter",
            "ClickHouse insert batches written.",
            [(batches, {})],
        ),
        *_family("datafast_insert_rows_total", "counter", "Rows written by those batches.", [(rows, {})]),
        *_family(
            "datafast_insert_latency_seconds", "gauge", "Median and p99 of recent insert batches.", latency
        ),
    ]
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

"""GET /metrics: Prometheus text exposition (prometheus-client; see :mod:`datafast.lib.metrics`).

Not public: with ``METRICS_TOKEN`` set, a scraper sends ``Authorization: Bearer <token>``
(else 401). Without it, only loopback peers (a scraper or ``curl`` on the same host) are
answered, and not when the request came through a reverse proxy (it carries forwarding headers,
and the proxy's own loopback address says nothing about the real client): 403 otherwise.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from litestar import Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers import BaseRouteHandler
from prometheus_client import CONTENT_TYPE_LATEST

from datafast.domain.ingest.log.stream import batch_stats
from datafast.domain.ingest.pipeline import IngestPipeline
from datafast.errors import Forbidden, Unauthorized
from datafast.lib.adapters import Adapters
from datafast.lib.metrics import ScrapeTime, exposition
from datafast.settings import Settings

__all__ = ("metrics",)

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


@get("/metrics", include_in_schema=False, cache=False, guards=[metrics_access])
async def metrics(state: State) -> Response[bytes]:
    pipeline: IngestPipeline = state.ingest_pipeline
    scrape = ScrapeTime(await pipeline.depth())
    adapters: Adapters = state.adapters
    if pipeline.writer is None and adapters.valkey is not None:
        # Scaled mode: the workers insert, and record their batches in Valkey for every web process.
        batches, rows, _ = await batch_stats(adapters.valkey)
        scrape = ScrapeTime(scrape.depth, batches, rows)
    return Response(exposition(pipeline.metrics.registry, [scrape]), media_type=CONTENT_TYPE_LATEST)

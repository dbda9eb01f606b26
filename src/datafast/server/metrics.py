"""GET /metrics: Prometheus text exposition of the ingest counters."""

from __future__ import annotations

import statistics

from litestar import Response, get
from litestar.datastructures import State

from datafast.domain.ingest.pipeline import IngestPipeline

__all__ = ("metrics",)


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    if labels:
        rendered = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        return f"{name}{{{rendered}}} {value}"
    return f"{name} {value}"


@get("/metrics", include_in_schema=False, cache=False)
async def metrics(state: State) -> Response[str]:
    pipeline: IngestPipeline = state.ingest_pipeline
    m = pipeline.metrics
    lines = [
        "# HELP datafast_events_accepted_total Events accepted and spooled.",
        "# TYPE datafast_events_accepted_total counter",
        _line("datafast_events_accepted_total", m.accepted),
        "# HELP datafast_events_duplicate_total Retried events recognised as already accepted.",
        "# TYPE datafast_events_duplicate_total counter",
        _line("datafast_events_duplicate_total", m.duplicates),
        "# HELP datafast_events_dropped_total Events accepted on the wire but not stored, by reason.",
        "# TYPE datafast_events_dropped_total counter",
        *(_line("datafast_events_dropped_total", n, {"reason": r}) for r, n in sorted(m.dropped.items())),
        "# HELP datafast_requests_rejected_total Requests refused, by reason.",
        "# TYPE datafast_requests_rejected_total counter",
        *(_line("datafast_requests_rejected_total", n, {"reason": r}) for r, n in sorted(m.rejected.items())),
        "# HELP datafast_spool_depth Events durable in the spool, not yet in ClickHouse.",
        "# TYPE datafast_spool_depth gauge",
        _line("datafast_spool_depth", pipeline.spool.depth),
        "# HELP datafast_insert_batches_total ClickHouse insert batches written.",
        "# TYPE datafast_insert_batches_total counter",
        _line("datafast_insert_batches_total", m.batches),
        "# HELP datafast_insert_rows_total Rows written by those batches.",
        "# TYPE datafast_insert_rows_total counter",
        _line("datafast_insert_rows_total", m.batch_rows),
        "# HELP datafast_insert_latency_seconds Median and p99 of recent insert batches.",
        "# TYPE datafast_insert_latency_seconds gauge",
    ]
    recent = sorted(m.batch_seconds)
    if recent:
        lines.append(_line("datafast_insert_latency_seconds", statistics.median(recent), {"quantile": "0.5"}))
        lines.append(
            _line(
                "datafast_insert_latency_seconds",
                recent[min(len(recent) - 1, int(len(recent) * 0.99))],
                {"quantile": "0.99"},
            )
        )
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

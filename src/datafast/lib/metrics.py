"""Prometheus metrics with prometheus-client, right under several processes.

``datafast serve --workers N`` runs N processes behind one port: a scrape lands on any of them.
So the CLI points ``PROMETHEUS_MULTIPROC_DIR`` at an empty directory before the workers start
(``datafast serve``: ``DATA_DIR/prometheus``); every process then writes its samples there and
:func:`exposition` sums them (prometheus-client's multiprocess mode): every scrape reads the
same totals. Without the variable (tests, one process), each app keeps its own registry.

HTTP request counts and latency histograms come from Litestar's Prometheus middleware
(``datafast_http_*``); ``/track``, answered before the framework, is counted by the ingest
metrics here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ("IngestMetrics", "ScrapeTime", "WorkerMetrics", "exposition", "multiprocess_dir")

ENV = "PROMETHEUS_MULTIPROC_DIR"
INSERT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def multiprocess_dir() -> str | None:
    return os.environ.get(ENV) or None


class IngestMetrics:
    """What ``/track`` and the batch writer count, in one app's registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.accepted = Counter(
            "datafast_events_accepted", "Events captured into the durable log (answered 202).", registry=r
        )
        self.duplicates = Counter(
            "datafast_events_duplicate",
            "Retried events recognised as already stored (by this process's processing).",
            registry=r,
        )
        self.dropped = Counter(
            "datafast_events_dropped",
            "Events answered 202 but not stored, by reason.",
            ["reason"],
            registry=r,
        )
        self.rejected = Counter(
            "datafast_requests_rejected", "Requests refused, by reason.", ["reason"], registry=r
        )
        self.insert_seconds = Histogram(
            "datafast_insert_duration_seconds",
            "Time to write one batch into ClickHouse (this process's batch writer).",
            buckets=INSERT_BUCKETS,
            registry=r,
        )
        self.insert_rows = Counter(
            "datafast_insert_rows", "Rows written by this process's batches.", registry=r
        )

    def observe_batch(self, rows: int, seconds: float) -> None:
        self.insert_seconds.observe(seconds)
        self.insert_rows.inc(rows)


class WorkerMetrics:
    """What one ``datafast worker`` counts, served on ``WORKER_METRICS_PORT`` (a worker has no app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.jobs = Counter(
            "datafast_jobs",
            "Queued jobs run by this worker, by job and outcome (complete, failed, aborted, retried).",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.insert_seconds = Histogram(
            "datafast_insert_duration_seconds",
            "Time to write one batch of the ingest stream into ClickHouse.",
            buckets=INSERT_BUCKETS,
            registry=self.registry,
        )
        self.insert_rows = Counter(
            "datafast_insert_rows",
            "Rows this worker wrote from the ingest stream.",
            registry=self.registry,
        )

    def observe_batch(self, rows: int, seconds: float) -> None:
        self.insert_seconds.observe(seconds)
        self.insert_rows.inc(rows)


class ScrapeTime(Collector):
    """Values read when scraped (the spool's depth; in scaled mode, what every worker wrote)."""

    def __init__(self, depth: int, worker_batches: int | None = None, worker_rows: int | None = None) -> None:
        self.depth, self.worker_batches, self.worker_rows = depth, worker_batches, worker_rows

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "datafast_spool_depth",
            "Events (scaled mode: requests) durable in the spool, not yet in ClickHouse.",
            value=self.depth,
        )
        if self.worker_batches is not None:
            yield CounterMetricFamily(
                "datafast_worker_insert_batches",
                "Insert batches written by every datafast worker (kept in Valkey).",
                value=self.worker_batches,
            )
            yield CounterMetricFamily(
                "datafast_worker_insert_rows",
                "Rows written by every datafast worker (kept in Valkey).",
                value=self.worker_rows or 0,
            )


def exposition(app_registry: CollectorRegistry, extra: Iterable[Collector] = ()) -> bytes:
    """The text format of every metric: summed over this server's processes when there are several."""
    registry = CollectorRegistry(auto_describe=True)
    for collector in extra:
        registry.register(collector)
    if multiprocess_dir() is not None:
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    # One process: this app's own metrics, plus the process-wide default registry (Litestar's
    # HTTP metrics, the process and GC collectors).
    return generate_latest(app_registry) + generate_latest(REGISTRY) + generate_latest(registry)

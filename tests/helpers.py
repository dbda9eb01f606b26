"""Test helpers shared by several test modules."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet
from prometheus_client.parser import text_string_to_metric_families

from datafast.db.config import sqlalchemy_config
from datafast.domain.ingest.capture import Captured, CapturedEvent
from datafast.domain.ingest.capture.schemas import TrackEvent
from datafast.lib.adapters import Adapters
from datafast.lib.eventstore import EventStore
from datafast.worker import create_worker

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


async def wait_for_rows(
    store: EventStore, website_id: uuid.UUID | str, expected: int, timeout: float = 20
) -> list[dict[str, Any]]:
    """Poll ClickHouse until ``expected`` rows of the site are there (the writer flushes on a timer)."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = await store.query(
            "SELECT * FROM events WHERE website_id = {site:UUID} ORDER BY timestamp",
            parameters={"site": str(website_id)},
        )
        rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
        if len(rows) >= expected:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {expected} rows for {website_id}, found {len(rows)} after {timeout}s")


def captured_record(site: str, n: int, at: float = 1_764_147_600.5, host: str = "sessions.example") -> bytes:
    """A captured request (spool or stream record): a pageview of visitor ``v<n>`` on ``/p<n>``."""
    event = TrackEvent(website_id=site, page_url=f"https://{host}/p{n}")
    captured = CapturedEvent(event, at + n, f"v{n}", "", "", str(uuid.uuid4()))
    return msgspec.msgpack.encode(Captured(CHROME_MAC, "FR", "", "", [captured]))


def metric(text: str, name: str, **labels: str) -> float | None:
    """One sample's value in a /metrics page (Prometheus text format), or None when absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


@contextlib.asynccontextmanager
async def running_worker(adapters: Adapters, **options: Any) -> AsyncIterator[Any]:
    """Scaled mode: a ``datafast worker`` on this event loop — the real SAQ worker, its drain jobs
    processing the ingest streams (``options``: the drainers', e.g. ``interval``)."""
    engine = sqlalchemy_config(adapters.settings).get_engine()
    worker = create_worker(adapters, engine, concurrency=2, shutdown_grace=0, **options)
    task = asyncio.create_task(worker.start())
    try:
        yield worker
    finally:
        worker.event.set()  # drain leases end after the batch in hand
        for _ in range(1000):  # at most 10 s
            if not worker.job_task_contexts:
                break
            await asyncio.sleep(0.01)
        await task  # stops the rest (idle pollers)
        await engine.dispose()


both_modes = pytest.mark.parametrize(
    "mode", ["embedded", pytest.param("scaled", marks=pytest.mark.scaled)], indirect=True
)
"""Run a test in embedded mode and in scaled mode (``mode`` is the conftest's indirect fixture)."""


# --- MaxMind DB files, written by the tests ---------------------------------------------------------


def city_record(country: str | None, subdivision: str | None, city: str | None) -> dict[str, Any]:
    """A GeoLite2-City record (what MaxMind's City databases hold for a network)."""
    record: dict[str, Any] = {}
    if country:
        record["country"] = {"iso_code": country, "names": {"en": country}}
    if subdivision:
        record["subdivisions"] = [{"iso_code": subdivision, "names": {"en": subdivision}}]
    if city:
        record["city"] = {"names": {"en": city, "de": f"{city} (de)"}}
    return record


def write_city_mmdb(path: Path, networks: dict[str, dict[str, Any]], ip_version: int = 6) -> Path:
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type="GeoLite2-City",
        languages=["en"],
        description="datafast test database",
    )
    for network, record in networks.items():
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path

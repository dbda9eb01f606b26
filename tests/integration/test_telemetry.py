"""Traces reach an OTLP/HTTP collector when one is configured: requests, SQL and ClickHouse spans."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from litestar.testing import AsyncTestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from datafast.app import create_app
from tests.conftest import SettingsFactory


class Collector(ThreadingHTTPServer):
    """A stand-in OpenTelemetry collector speaking OTLP over HTTP (protobuf)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def span_names(self) -> list[str]:
        return [
            span.name
            for request in self.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append(request)
        self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_traces_are_exported_over_otlp(make_settings: SettingsFactory, collector: Collector) -> None:
    settings = make_settings(OTEL_EXPORTER_OTLP_ENDPOINT=collector.url, OTEL_SERVICE_NAME="datafast-test")
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.get("/readyz")).status_code == 200
    # Leaving the app shuts the tracer provider down, which flushes every pending span.

    assert collector.paths
    assert set(collector.paths) == {"/v1/traces"}
    names = collector.span_names()
    assert "GET /readyz" in names
    assert "clickhouse command" in names  # the readiness ping
    assert "SELECT sqlite" in names  # the readiness query on the config database
    service = collector.requests[0].resource_spans[0].resource.attributes
    assert {a.key: a.value.string_value for a in service}["service.name"] == "datafast-test"


@pytest.mark.parametrize("mode", ["embedded"], indirect=True)
async def test_no_endpoint_means_no_export(make_settings: SettingsFactory, collector: Collector) -> None:
    async with AsyncTestClient(create_app(make_settings())) as client:
        assert (await client.get("/readyz")).status_code == 200

    assert collector.requests == []

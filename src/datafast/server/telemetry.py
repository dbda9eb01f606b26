"""OpenTelemetry traces: requests, config-database and ClickHouse calls, exported over OTLP.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; the exporter then reads the standard OTEL_*
variables itself (headers, protocol details).
"""

from __future__ import annotations

from typing import Any

from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from datafast import __version__
from datafast.settings import Settings

__all__ = ("Telemetry",)


class Telemetry:
    def __init__(self, settings: Settings) -> None:
        self.provider: TracerProvider | None = None
        if settings.otel_endpoint is None:
            return
        resource = Resource.create({SERVICE_NAME: settings.otel_service_name, SERVICE_VERSION: __version__})
        self.provider = TracerProvider(resource=resource)
        endpoint = settings.otel_endpoint.rstrip("/") + "/v1/traces"
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))

    def plugins(self) -> list[OpenTelemetryPlugin]:
        if self.provider is None:
            return []
        return [OpenTelemetryPlugin(OpenTelemetryConfig(tracer_provider=self.provider))]

    def instrument_database(self, engine: AsyncEngine) -> None:
        """A span per SQL statement on this engine.

        opentelemetry-instrumentation-sqlalchemy declares SQLAlchemy < 2.1 and patches
        ``create_engine`` process-wide, so these few event hooks stand in for it, per engine.
        """
        if self.provider is None:
            return
        tracer = self.provider.get_tracer("datafast.db")
        system = engine.dialect.name
        spans: dict[int, Span] = {}

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _start(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
            spans[id(cursor)] = tracer.start_span(
                f"{verb} {system}",
                kind=SpanKind.CLIENT,
                attributes={"db.system": system, "db.statement": statement[:2000]},
            )

        @event.listens_for(engine.sync_engine, "after_cursor_execute")
        def _end(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            if (span := spans.pop(id(cursor), None)) is not None:
                span.end()

        @event.listens_for(engine.sync_engine, "handle_error")
        def _error(context: Any) -> None:
            if (span := spans.pop(id(context.cursor), None)) is not None:
                span.set_status(Status(StatusCode.ERROR, str(context.original_exception)[:300]))
                span.end()

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()

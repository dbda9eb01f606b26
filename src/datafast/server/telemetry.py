"""OpenTelemetry traces: requests, config-database and ClickHouse calls, exported over OTLP.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set; the exporter then reads the standard OTEL_*
variables itself (headers, protocol details).
"""

from __future__ import annotations

from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
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
        if self.provider is not None:
            SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, tracer_provider=self.provider)

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()

"""OpenTelemetry tracing, switched on only when an OTLP endpoint is configured (``NEXPO_OTLP_ENDPOINT``
or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``). Needs the ``otel`` extra; without it the service
logs a warning and runs untraced."""

from __future__ import annotations

import logging
import os
from typing import Any

from .settings import Settings

log = logging.getLogger("api")


def otlp_endpoint(settings: Settings) -> str | None:
    return settings.otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None


def tracing_middleware(settings: Settings) -> tuple[Any, dict[str, Any]] | None:
    """OpenTelemetry's ASGI middleware class and its arguments when tracing is on, else None."""
    endpoint = otlp_endpoint(settings)
    if endpoint is None:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        log.warning(
            "OTLP endpoint set but OpenTelemetry is not installed (pip install 'nexpo[otel]'): %s", exc
        )
        return None
    traces = endpoint.rstrip("/")
    if not traces.endswith("/v1/traces"):
        traces += "/v1/traces"
    provider = TracerProvider(resource=Resource.create({"service.name": settings.service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces)))
    # Not installed as the global provider: the middleware gets it explicitly, so several apps
    # (tests) in one process each keep their own, and shutting one down flushes only its spans.
    log.info("OpenTelemetry tracing on: exporting spans to %s", traces)
    return OpenTelemetryMiddleware, {"tracer_provider": provider, "exclude_spans": ["receive", "send"]}

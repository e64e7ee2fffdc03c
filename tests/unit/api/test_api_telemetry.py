"""api/telemetry.py: with an OTLP endpoint, spans reach the collector and share the trace id the
client sent; the response's traceparent names the server span."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, make_settings
from nexpo.api.main import create_app
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class Collector(BaseHTTPRequestHandler):
    spans: ClassVar[list[tuple[str, str, str]]] = []  # (trace id, span id, name)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    self.spans.append((span.trace_id.hex(), span.span_id.hex(), span.name))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Collector.spans = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_spans_are_exported_in_the_callers_trace(tmp_path: Path, collector: str) -> None:
    app = create_app(make_settings(tmp_path, otlp_endpoint=collector))
    incoming = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
    with TestClient(app) as c:
        response = c.get("/v1/ping", headers={**AUTH, "traceparent": incoming})
        assert response.status_code == 200
    # leaving the client ran the lifespan shutdown, which flushes the exporter
    _, trace_id, span_id, flags = response.headers["traceparent"].split("-")
    assert trace_id == TRACE_ID
    assert flags == "01"
    assert (TRACE_ID, span_id) in {(t, s) for t, s, _ in Collector.spans}
    assert all(t == TRACE_ID for t, _, _ in Collector.spans)


def test_tracing_is_off_without_an_endpoint(client: TestClient) -> None:
    assert client.app.state.gateway.tracer_provider is None  # type: ignore[attr-defined]

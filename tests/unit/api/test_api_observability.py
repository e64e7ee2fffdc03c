"""api/middleware/{traceparent,metrics}.py and /metrics."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from gateway_helpers import AUTH
from nexpo.api.middleware.traceparent import parse_traceparent

INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
HEADER = re.compile(r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


def test_parse_traceparent() -> None:
    assert parse_traceparent(INCOMING.encode()) == (b"4bf92f3577b34da6a3ce929d0e0e4736", b"01")
    for bad in (
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ):
        assert parse_traceparent(bad.encode()) is None, bad


def test_incoming_trace_is_continued_with_a_new_span(client: TestClient) -> None:
    response = client.get("/v1/ping", headers={**AUTH, "traceparent": INCOMING})
    out = response.headers["traceparent"]
    assert HEADER.match(out)
    assert out.split("-")[1] == INCOMING.split("-")[1]
    assert out.split("-")[2] != INCOMING.split("-")[2]
    assert out.endswith("-01")


def test_missing_or_invalid_trace_starts_a_new_one(client: TestClient) -> None:
    first = client.get("/livez").headers["traceparent"]
    second = client.get("/livez", headers={"traceparent": "garbage"}).headers["traceparent"]
    assert HEADER.match(first)
    assert HEADER.match(second)
    assert first.split("-")[1] != second.split("-")[1]
    # errors carry it too
    assert HEADER.match(client.get("/v1/ping").headers["traceparent"])


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/v1/ping", headers=AUTH)
    client.get("/v1/ping")  # 401
    client.get("/v1/models/nope", headers=AUTH)  # 404 on a template
    client.get("/no/such/path")
    text = client.get("/metrics").text
    assert 'nexpo_http_requests_total{method="GET",route="/v1/ping",status="200"}' in text
    assert 'route="/v1/models/{name}",status="404"' in text
    assert 'route="<unmatched>"' in text
    assert "nexpo_http_request_duration_seconds_bucket" in text
    assert "nexpo_http_requests_in_flight" in text
    assert "/no/such/path" not in text


def test_batch_metrics_exposed(client: TestClient) -> None:
    client.post("/v1/models/digits/infer", headers=AUTH, json={"inputs": [[0.0] * 64]})
    text = client.get("/metrics").text
    assert 'nexpo_inference_batch_rows_count{model="digits"}' in text
    assert 'nexpo_inference_queue_wait_seconds_count{model="digits"}' in text

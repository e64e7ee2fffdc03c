"""The real gateway over HTTP on a loopback port: auth, limits, every endpoint, SIGTERM drain, and
metrics aggregated across several workers."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from nexpo.api.devserver import GatewayProcess
from nexpo.api.models.train_digits import held_out_split

KEY = "integration-key-42"
LIMITED_KEY = "integration-limited-key"
AUTH = {"X-API-Key": KEY}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "NEXPO_API_KEYS": f"{KEY},{LIMITED_KEY}",
        "NEXPO_STATE_DIR": str(tmp / "state"),
        "NEXPO_MAX_BODY_BYTES": str(1024 * 1024),
        "NEXPO_RATE_LIMIT_RPS": "1",  # refills too slowly to hide the 429 however slow the machine
        "NEXPO_RATE_LIMIT_BURST": "600",
        "NEXPO_GRACEFUL_SHUTDOWN_S": "10",
        **extra,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("gateway")
    with GatewayProcess(_env(tmp), log_path=tmp / "server.log") as process:
        yield process


@pytest.fixture(scope="module")
def http(server: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def test_auth_over_http(http: httpx.Client) -> None:
    assert http.get("/livez").status_code == 200
    assert http.get("/readyz").status_code == 200
    denied = http.get("/v1/info")
    assert denied.status_code == 401
    assert denied.headers["content-type"] == "application/problem+json"
    assert http.get("/v1/info", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


def test_held_out_digits_accuracy_through_http(http: httpx.Client) -> None:
    images, labels = held_out_split()
    chunks = np.array_split(np.arange(len(images)), 15)

    def classify(rows: np.ndarray) -> list[str]:
        response = http.post("/v1/models/digits/infer", headers=AUTH, json={"inputs": images[rows].tolist()})
        assert response.status_code == 200, response.text
        predicted: list[str] = response.json()["labels"]
        return predicted

    with ThreadPoolExecutor(8) as pool:  # concurrent: exercises the micro-batcher
        predicted = [label for part in pool.map(classify, chunks) for label in part]
    accuracy = float(np.mean(np.array(predicted, dtype=int) == labels))
    assert len(predicted) == len(labels) == 450
    assert accuracy >= 0.95, accuracy


def test_processing_endpoints(http: httpx.Client) -> None:
    data = b"hello gateway"
    assert (
        http.post("/v1/hash", headers=AUTH, json={"data": b64(data)}).json()["digest"]
        == hashlib.sha256(data).hexdigest()
    )
    mac = http.post("/v1/hmac", headers=AUTH, json={"key": b64(b"k"), "data": b64(data)}).json()["mac"]
    assert len(mac) == 64
    merkle = http.post("/v1/merkle", headers=AUTH, json={"leaves": [b64(b"a"), b64(b"b")], "index": 1}).json()
    assert merkle["tree_size"] == 2
    assert len(merkle["proof"]) == 1
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    body = http.post("/v1/matmul", headers=AUTH, json={"a": a.tolist(), "b": b.tolist()}).json()
    np.testing.assert_array_equal(np.array(body["result"]), a @ b)
    raw = io.BytesIO()
    np.save(raw, a)
    np.save(raw, b)
    response = http.post(
        "/v1/matmul", headers={**AUTH, "content-type": "application/x-npy"}, content=raw.getvalue()
    )
    np.testing.assert_array_equal(np.load(io.BytesIO(response.content)), a @ b)
    sealed = http.post("/v1/transit/default/encrypt", headers=AUTH, json={"plaintext": b64(data)}).json()
    assert sealed["ciphertext"].startswith("nexpo:v1:")
    opened = http.post("/v1/transit/default/decrypt", headers=AUTH, json={"ciphertext": sealed["ciphertext"]})
    assert base64.b64decode(opened.json()["plaintext"]) == data


def test_stream_hash_of_1_gib_keeps_memory_flat(server: GatewayProcess, http: httpx.Client) -> None:
    assert server.process is not None
    proc = psutil.Process(server.process.pid)
    chunk = bytes(range(256)) * 4096  # 1 MiB
    total = 1024

    def body() -> Iterator[bytes]:
        for _ in range(total):
            yield chunk

    expected = hashlib.sha256()
    for _ in range(total):
        expected.update(chunk)
    before = proc.memory_info().rss
    started = time.perf_counter()
    response = http.post("/v1/hash/stream", headers=AUTH, content=body())
    print(f"1 GiB streamed and hashed in {time.perf_counter() - started:.2f} s")
    grown = proc.memory_info().rss - before
    assert response.status_code == 200, response.text
    assert response.json() == {
        "algorithm": "sha256",
        "digest": expected.hexdigest(),
        "bytes": total * len(chunk),
    }
    assert grown < 64 * 1024 * 1024, f"server RSS grew by {grown} bytes"


def test_body_limit_rate_limit_and_trace(http: httpx.Client) -> None:
    big = {"data": b64(b"x" * 2_000_000)}
    assert http.post("/v1/hash", headers=AUTH, json=big).status_code == 413
    limited = {"X-API-Key": LIMITED_KEY}
    statuses = [http.get("/v1/ping", headers=limited) for _ in range(700)]
    rejected = [r for r in statuses if r.status_code == 429]
    assert rejected, "the bucket of 600 should run dry"
    assert int(rejected[0].headers["retry-after"]) >= 1
    assert rejected[0].headers["content-type"] == "application/problem+json"
    assert http.get("/v1/ping", headers=AUTH).status_code == 200  # other keys unaffected
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    out = http.get("/v1/ping", headers={**AUTH, "traceparent": incoming}).headers["traceparent"]
    assert out.split("-")[1] == "0af7651916cd43dd8448eb211c80319c"


def _raw_request(port: int, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    sock.sendall(head)
    return sock


def _read_response(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            break
        chunks.append(data)
        if b"\r\n\r\n" in b"".join(chunks) and b'"}' in chunks[-1]:
            break
    return b"".join(chunks)


def _head(port: int, length: int, path: str = "/v1/hash/stream") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {KEY}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


def test_stalled_request_gets_504(tmp_path: Path) -> None:
    env = _env(tmp_path, NEXPO_REQUEST_TIMEOUT_S="1")
    with GatewayProcess(env, log_path=tmp_path / "deadline.log") as server:
        sock = _raw_request(server.port, _head(server.port, 100, "/v1/hash") + b"x" * 10)
        with sock:
            response = _read_response(sock)
    assert response.startswith(b"HTTP/1.1 504"), response[:200]
    assert b"application/problem+json" in response


def _wait_until_in_flight(server: GatewayProcess, count: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = httpx.get(server.url + "/metrics", timeout=10).text
        match = re.search(r"^nexpo_http_requests_in_flight ([0-9.]+)", text, re.M)
        if match and float(match.group(1)) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("the upload never reached the application")


def test_sigterm_drains_in_flight_requests(tmp_path: Path) -> None:
    with GatewayProcess(_env(tmp_path), log_path=tmp_path / "drain.log") as server:
        sock = _raw_request(server.port, _head(server.port, 2000) + b"a" * 1000)
        _wait_until_in_flight(server, 2)  # our upload, and the /metrics request asking
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sock.sendall(b"a" * 1000)  # the rest arrives after SIGTERM
        with sock:
            response = _read_response(sock)
        assert response.startswith(b"HTTP/1.1 200"), response[:300]
        assert hashlib.sha256(b"a" * 2000).hexdigest().encode() in response
        assert server.process.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after draining
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url + "/livez", timeout=2)


def _ping_count(metrics: str) -> float:
    pattern = r'nexpo_http_requests_total\{method="GET",route="/v1/ping",status="200"\} ([0-9.e+]+)'
    match = re.search(pattern, metrics)
    return float(match.group(1)) if match else 0.0


def test_metrics_aggregate_across_workers(tmp_path: Path) -> None:
    env = _env(tmp_path, NEXPO_WORKERS="2")
    with GatewayProcess(
        env, command=("-m", "nexpo.cli", "serve"), log_path=tmp_path / "workers.log"
    ) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            pids = set()
            for _ in range(60):  # new connections spread over both workers
                with httpx.Client(base_url=server.url, timeout=30) as fresh:
                    assert fresh.get("/v1/ping", headers=AUTH).status_code == 200
            for _ in range(5):
                text = client.get("/metrics").text
                assert _ping_count(text) == 60.0
                pids.add(text)
        assert server.process is not None
        children = psutil.Process(server.process.pid).children()
        assert len(children) >= 2


def test_operator_options_json_logs_root_path_and_forwarded_ips(tmp_path: Path) -> None:
    """`nexpo serve`'s flags reach every worker: JSON log lines with trace ids, a path prefix,
    client addresses from a trusted proxy's X-Forwarded-For."""
    log_path = tmp_path / "json.log"
    flags = (
        "--workers",
        "2",
        "--log-format",
        "json",
        "--access-log",
        "--proxy-headers",
        "--root-path",
        "/gw",
    )
    with GatewayProcess(
        _env(tmp_path), command=("-m", "nexpo.cli", "serve", *flags), log_path=log_path
    ) as server:
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        headers = {
            **AUTH,
            "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
            "X-Forwarded-For": "203.0.113.9",
        }
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/gw/v1/ping", headers=headers).status_code == 200
            assert "'/gw/openapi.json'" in client.get("/gw/docs").text
            assert client.get("/gw/v1/ping").status_code == 401
        assert server.stop() == 0
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert {"uvicorn.error", "uvicorn.access", "api"} <= {line["logger"] for line in lines}
    access = [line for line in lines if line.get("trace_id") == trace_id]
    assert len(access) == 1 and access[0]["logger"] == "uvicorn.access"
    assert access[0]["client"].startswith("203.0.113.9:") and access[0]["status"] == 200

"""Load benchmark of the gateway over loopback HTTP: req/s and p50/p99 latency with 64 concurrent
keep-alive clients, side by side in one run:

- ``/v1/models/digits/infer`` (one image per request) with micro-batching on and off;
- ``/v1/hash`` (1 KiB);
- ``/v1/ping`` (authenticated, through every middleware: metrics, traceparent, timeout, auth, rate
  limit, body limit) against a bare FastAPI endpoint under the same uvicorn (uvloop + httptools).

Bounded: each case runs for ``SECONDS`` (after a short warm-up) on 127.0.0.1 only. The load
generator is a minimal asyncio HTTP/1.1 client in this process (cheaper than httpx, so the server,
not the client, is what saturates; both share the machine's cores, so compare ratios).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from nexpo.api.devserver import GatewayProcess

CLIENTS = 64
SECONDS = float(os.environ.get("NEXPO_GATEWAY_BENCH_SECONDS", "3"))
WARMUP = 0.5
ROUNDS = 3
KEY = "bench-key"
HERE = Path(__file__).resolve().parent
RESULTS: dict[str, dict[str, float]] = {}


def _request(method: str, path: str, body: bytes = b"", auth: bool = True) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if auth:
        head += f"X-API-Key: {KEY}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _client(
    port: int, request: bytes, stop_at: float, record_from: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors = 0
    try:
        while (start := time.perf_counter()) < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            if start >= record_from:
                latencies.append(time.perf_counter() - start)
    finally:
        writer.close()
    return errors


async def _load(
    port: int, request: bytes, seconds: float = SECONDS, warmup: float = WARMUP
) -> tuple[list[float], int]:
    latencies: list[float] = []
    now = time.perf_counter()
    record_from, stop_at = now + warmup, now + warmup + seconds
    errors = await asyncio.gather(
        *(_client(port, request, stop_at, record_from, latencies) for _ in range(CLIENTS))
    )
    return latencies, sum(errors)


# (report group, implementation) per load case: rows of one group are compared in the report.
CASES = {
    "bare FastAPI GET /ping": ("trivial endpoint, 64 clients", "bare FastAPI (no auth, no metrics)"),
    "gateway GET /v1/ping": ("trivial endpoint, 64 clients", "nexpo gateway /v1/ping (auth + metrics)"),
    "infer batched": ("digits infer, 64 clients", "nexpo gateway, micro-batching on"),
    "infer unbatched": ("digits infer, 64 clients", "same gateway, micro-batching off"),
    "hash 1 KiB": ("/v1/hash 1 KiB, 64 clients", "nexpo gateway"),
}


def _run(benchmark: Any, name: str, port: int, request: bytes) -> None:
    outcome: dict[str, Any] = {}
    case, implementation = CASES[name]
    benchmark.group = f"gateway: {case}"

    def load() -> None:
        outcome["latencies"], outcome["errors"] = asyncio.run(_load(port, request))

    benchmark.pedantic(load, rounds=1, iterations=1)
    latencies = np.array(outcome["latencies"])
    stats = {
        "requests": float(len(latencies)),
        "req_per_s": len(latencies) / SECONDS,
        "p50_ms": float(np.percentile(latencies, 50) * 1000),
        "p99_ms": float(np.percentile(latencies, 99) * 1000),
        "errors": float(outcome["errors"]),
    }
    RESULTS[name] = stats
    benchmark.extra_info.update(stats, clients=CLIENTS, seconds=SECONDS, implementation=implementation)
    benchmark.extra_info["correct"] = outcome["errors"] == 0
    rate, p50, p99 = stats["req_per_s"], stats["p50_ms"], stats["p99_ms"]
    print(f"\n{name:<28} {rate:>8.0f} req/s  p50 {p50:.2f} ms  p99 {p99:.2f} ms")
    assert outcome["errors"] == 0


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        "NEXPO_API_KEYS": KEY,
        "NEXPO_STATE_DIR": str(tmp / "state"),
        "NEXPO_RATE_LIMIT_RPS": "1000000",
        "NEXPO_RATE_LIMIT_BURST": "1000000",
        "NEXPO_GRPC_PORT": "0",  # off: two gateways (or another on this machine) would both take 8001
        **extra,
    }


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("batched")
    with GatewayProcess(_env(tmp, NEXPO_BATCHING="true"), log_path=tmp / "log") as server:
        yield server


@pytest.fixture(scope="module")
def unbatched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("unbatched")
    with GatewayProcess(_env(tmp, NEXPO_BATCHING="false"), log_path=tmp / "log") as server:
        yield server


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("bare")
    command = ("-m", "uvicorn", "--app-dir", str(HERE), "gateway_bare_app:app", "--port", "{port}",
               "--loop", "uvloop", "--http", "httptools", "--no-access-log")  # fmt: skip
    with GatewayProcess(command=command, log_path=tmp / "log") as server:
        yield server


def _digit_row() -> bytes:
    from nexpo.api.models.train_digits import held_out_split

    images, _ = held_out_split()
    return json.dumps({"inputs": [images[0].tolist()]}).encode()


def test_bare_fastapi_ping(benchmark: Any, bare: GatewayProcess) -> None:
    _run(benchmark, "bare FastAPI GET /ping", bare.port, _request("GET", "/ping", auth=False))


def test_gateway_ping(benchmark: Any, batched: GatewayProcess) -> None:
    _run(benchmark, "gateway GET /v1/ping", batched.port, _request("GET", "/v1/ping"))


def test_infer_batched(benchmark: Any, batched: GatewayProcess) -> None:
    _run(benchmark, "infer batched", batched.port, _request("POST", "/v1/models/digits/infer", _digit_row()))


def test_infer_unbatched(benchmark: Any, unbatched: GatewayProcess) -> None:
    _run(
        benchmark,
        "infer unbatched",
        unbatched.port,
        _request("POST", "/v1/models/digits/infer", _digit_row()),
    )


def test_hash_1k(benchmark: Any, batched: GatewayProcess) -> None:
    body = json.dumps({"data": base64.b64encode(os.urandom(1024)).decode()}).encode()
    _run(benchmark, "hash 1 KiB", batched.port, _request("POST", "/v1/hash", body))


def test_goal_ratios(
    benchmark: Any, bare: GatewayProcess, batched: GatewayProcess, unbatched: GatewayProcess
) -> None:
    """The issue's two goals, measured as ratios of interleaved 1-second rounds (the machine is
    shared, so rounds alternate to expose each pair to the same background load); medians reported,
    never asserted."""
    infer = _digit_row()
    cases = {
        "bare": (bare.port, _request("GET", "/ping", auth=False)),
        "ping": (batched.port, _request("GET", "/v1/ping")),
        "batched": (batched.port, _request("POST", "/v1/models/digits/infer", infer)),
        "unbatched": (unbatched.port, _request("POST", "/v1/models/digits/infer", infer)),
    }
    rates: dict[str, list[float]] = {name: [] for name in cases}

    def rounds() -> None:
        for _ in range(ROUNDS):
            for name, (port, request) in cases.items():
                latencies, errors = asyncio.run(_load(port, request, seconds=1.0, warmup=0.2))
                assert errors == 0
                rates[name].append(len(latencies) / 1.0)

    benchmark.group = "gateway: goal ratios (interleaved rounds)"  # before timing: it is read then
    benchmark.pedantic(rounds, rounds=1, iterations=1)
    median = {name: float(np.median(values)) for name, values in rates.items()}
    ratios = {
        "batched_over_unbatched": median["batched"] / median["unbatched"],
        "ping_over_bare": median["ping"] / median["bare"],
    }
    benchmark.extra_info.update({f"{k}_req_per_s": v for k, v in median.items()}, **ratios, rounds=ROUNDS)
    benchmark.extra_info["goals"] = [
        {"goal": "/v1 infer, batching on ÷ off (req/s)", "value": ratios["batched_over_unbatched"],
         "target": 2},
        {"goal": "/v1/ping (auth + metrics) ÷ bare FastAPI (req/s)", "value": ratios["ping_over_bare"],
         "target": 0.85},
    ]  # fmt: skip
    benchmark.extra_info["correct"] = True
    print(
        f"\nmedian req/s over {ROUNDS} interleaved rounds: "
        + ", ".join(f"{k} {v:.0f}" for k, v in median.items())
        + f"\ninfer batched / unbatched: {ratios['batched_over_unbatched']:.2f}x (goal >= 2)"
        + f"\n/v1/ping (auth + metrics) / bare FastAPI: {ratios['ping_over_bare']:.2f} (goal >= 0.85)"
    )

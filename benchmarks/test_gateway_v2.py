"""Load benchmark of the Open Inference Protocol (v2): req/s and p50/p99 latency with 64 concurrent
clients, one image per request, side by side in one run:

- REST ``/v2`` with binary tensors, on the digits MLP (safetensors), on the same MLP as ONNX and on
  issue 17's encoder block (nexpo's engine, or onnxruntime standing in for it: benchmarks/v2_models.py);
- the server a user would write without nexpo: FastAPI, one route, one onnxruntime session, JSON
  in/out (benchmarks/v2_bare_onnx_app.py);
- gRPC (``GRPCInferenceService``) against REST on the same gateway;
- micro-batching on against off, on the same models;
- in ``test_goal_ratios``, gRPC against REST and batching on against off again with h2load (C) as
  the client, when it is installed: the Python gRPC client costs more per call than the HTTP one,
  and either costs about what the server does per request (benchmarks/h2load.py).

Bounded: each case runs ``SECONDS`` after a warm-up, on 127.0.0.1 only; the load generators are
in this process (a minimal HTTP/1.1 client, grpc.aio with pre-serialized messages) and share the
machine's cores with the servers, so compare ratios. ``test_goal_ratios`` interleaves short rounds.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h2load
import numpy as np
import pytest
from nexpo.api.devserver import GatewayProcess, free_port
from nexpo.api.settings import DEFAULT_MODELS_DIR
from test_gateway import _load  # the HTTP/1.1 load generator (64 keep-alive clients)

pytest.importorskip("onnxruntime")
grpc = pytest.importorskip("grpc")

CLIENTS = 64
CHANNELS = 8  # gRPC connections the 64 clients share (HTTP/2 multiplexes the rest)
SECONDS = float(os.environ.get("NEXPO_GATEWAY_BENCH_SECONDS", "2"))
WARMUP = 0.5
ROUNDS = 3
KEY = "bench-key"
HERE = Path(__file__).resolve().parent
ROW = np.random.default_rng(7).random(64, dtype=np.float32) * 16
SEQUENCE = np.random.default_rng(7).standard_normal((32, 128)).astype(np.float32)  # the encoder's


class Served:
    def __init__(self, process: GatewayProcess, grpc_port: int = 0) -> None:
        self.process, self.port, self.grpc_port = process, process.port, grpc_port


def _gateway(tmp: Path, batching: bool) -> Iterator[Served]:
    from v2_models import export_encoder, export_onnx

    repository = tmp / "repository"
    for name in ("digits", "digits_onnx", "encoder"):
        (repository / name / "1").mkdir(parents=True)
    shutil.copyfile(DEFAULT_MODELS_DIR / "digits.safetensors", repository / "digits/1/model.safetensors")
    export_onnx(DEFAULT_MODELS_DIR / "digits.safetensors", repository / "digits_onnx/1/model.onnx")
    export_encoder(repository / "encoder/1/model.onnx")
    grpc_port = free_port()
    env = {
        "NEXPO_API_KEYS": KEY,
        "NEXPO_STATE_DIR": str(tmp / "state"),
        "NEXPO_RATE_LIMIT_RPS": "1000000",
        "NEXPO_RATE_LIMIT_BURST": "1000000",
        "NEXPO_MODEL_REPOSITORY": str(repository),
        "NEXPO_REPOSITORY_POLL_S": "0",
        "NEXPO_BATCHING": str(batching).lower(),
        "NEXPO_GRPC_PORT": str(grpc_port),
    }
    command = (str(HERE / "v2_models.py"), "gateway")
    with GatewayProcess(env, command=command, log_path=tmp / "log") as process:
        yield Served(process, grpc_port)


@pytest.fixture(scope="module")
def batched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _gateway(tmp_path_factory.mktemp("v2-batched"), batching=True)


@pytest.fixture(scope="module")
def unbatched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _gateway(tmp_path_factory.mktemp("v2-unbatched"), batching=False)


def _bare(tmp: Path, model: Path) -> Iterator[Served]:
    command = ("-m", "uvicorn", "--app-dir", str(HERE), "v2_bare_onnx_app:app", "--port", "{port}",
               "--loop", "uvloop", "--http", "httptools", "--no-access-log")  # fmt: skip
    with GatewayProcess({"NEXPO_BENCH_ONNX": str(model)}, command=command, log_path=tmp / "log") as process:
        yield Served(process)


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from v2_models import export_onnx

    tmp = tmp_path_factory.mktemp("v2-bare")
    export_onnx(DEFAULT_MODELS_DIR / "digits.safetensors", tmp / "digits.onnx")
    yield from _bare(tmp, tmp / "digits.onnx")


@pytest.fixture(scope="module")
def bare_encoder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from v2_models import export_encoder

    tmp = tmp_path_factory.mktemp("v2-bare-encoder")
    export_encoder(tmp / "encoder.onnx")
    yield from _bare(tmp, tmp / "encoder.onnx")


def _http(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


def rest_binary(model: str, tensor: str = "INPUT", x: np.ndarray = ROW) -> bytes:
    raw = x.astype("<f4").tobytes()
    header = json.dumps({
        "inputs": [{"name": tensor, "datatype": "FP32", "shape": [1, *x.shape],
                    "parameters": {"binary_data_size": len(raw)}}],
        "parameters": {"binary_data_output": True},
    }).encode()  # fmt: skip
    headers = {"X-API-Key": KEY, "Content-Type": "application/octet-stream",
               "Inference-Header-Content-Length": str(len(header))}  # fmt: skip
    return _http(f"/v2/models/{model}/infer", header + raw, headers)


def bare_json(x: np.ndarray = ROW) -> bytes:
    body = json.dumps({"inputs": [x.tolist()]}).encode()
    return _http("/infer", body, {"Content-Type": "application/json"})


def grpc_infer(model: str, tensor: str = "INPUT", x: np.ndarray = ROW) -> bytes:
    from nexpo.api.grpc_v2 import messages

    request = messages.ModelInferRequest(model_name=model)
    request.inputs.add(name=tensor, datatype="FP32", shape=[1, *x.shape])
    request.raw_input_contents.append(x.astype("<f4").tobytes())
    return bytes(request.SerializeToString())


async def _grpc_load(port: int, request: bytes, seconds: float, warmup: float) -> tuple[list[float], int]:
    options = [("grpc.use_local_subchannel_pool", 1)]  # one connection per channel
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) for _ in range(CHANNELS)]
    calls = [c.unary_unary("/inference.GRPCInferenceService/ModelInfer") for c in channels]  # bytes in/out
    metadata = (("x-api-key", KEY),)
    latencies: list[float] = []
    now = time.perf_counter()
    record_from, stop_at = now + warmup, now + warmup + seconds

    async def client(index: int) -> int:
        call, errors = calls[index % CHANNELS], 0
        while (start := time.perf_counter()) < stop_at:
            try:
                await call(request, metadata=metadata, timeout=30)
            except grpc.aio.AioRpcError:
                errors += 1
            if start >= record_from:
                latencies.append(time.perf_counter() - start)
        return errors

    try:
        errors = await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    finally:
        for channel in channels:
            await channel.close()
    return latencies, sum(errors)


def _measure(kind: str, port: int, request: bytes, seconds: float, warmup: float) -> tuple[list[float], int]:
    if kind == "grpc":
        return asyncio.run(_grpc_load(port, request, seconds, warmup))
    return asyncio.run(_load(port, request, seconds=seconds, warmup=warmup))


# name -> (report group, implementation, server fixture, protocol, request)
CASES: dict[str, tuple[str, str, str, str, Any]] = {
    "bare onnxruntime JSON": ("digits MLP", "FastAPI + onnxruntime, JSON", "bare", "http", bare_json),
    "REST v2 binary, MLP": ("digits MLP", "nexpo /v2 binary, safetensors MLP", "batched", "http",
                            lambda: rest_binary("digits")),
    "REST v2 binary, ONNX": ("digits MLP", "nexpo /v2 binary, ONNX MLP", "batched", "http",
                             lambda: rest_binary("digits_onnx")),
    "gRPC, MLP": ("digits MLP", "nexpo gRPC, safetensors MLP", "batched", "grpc",
                  lambda: grpc_infer("digits")),
    "gRPC, ONNX": ("digits MLP", "nexpo gRPC, ONNX MLP", "batched", "grpc",
                   lambda: grpc_infer("digits_onnx")),
    "REST v2 unbatched, MLP": ("digits MLP", "nexpo /v2 binary, batching off", "unbatched", "http",
                               lambda: rest_binary("digits")),
    "REST v2 unbatched, ONNX": ("digits MLP", "nexpo /v2 binary ONNX, batching off", "unbatched", "http",
                                lambda: rest_binary("digits_onnx")),
    "bare onnxruntime JSON, encoder": ("encoder", "FastAPI + onnxruntime, JSON", "bare_encoder", "http",
                                       lambda: bare_json(SEQUENCE)),
    "REST v2 binary, encoder": ("encoder", "nexpo /v2 binary", "batched", "http",
                                lambda: rest_binary("encoder", "x", SEQUENCE)),
    "gRPC, encoder": ("encoder", "nexpo gRPC", "batched", "grpc",
                      lambda: grpc_infer("encoder", "x", SEQUENCE)),
    "REST v2 unbatched, encoder": ("encoder", "nexpo /v2 binary, batching off", "unbatched", "http",
                                   lambda: rest_binary("encoder", "x", SEQUENCE)),
}  # fmt: skip


# gRPC against REST and batching on against off once more with h2load as the client, when it is
# installed (benchmarks/h2load.py): the Python clients cost about what the server does per request
H2LOAD_CASES = ("REST v2 binary, ONNX", "gRPC, ONNX", "REST v2 binary, MLP", "gRPC, MLP",
                "REST v2 unbatched, MLP", "REST v2 unbatched, ONNX")  # fmt: skip


def _target(name: str, servers: dict[str, Served]) -> tuple[str, int, bytes]:
    _, _, server, kind, request = CASES[name]
    served = servers[server]
    return kind, served.grpc_port if kind == "grpc" else served.port, request()


@pytest.mark.parametrize("name", list(CASES))
def test_load(benchmark: Any, name: str, request: pytest.FixtureRequest) -> None:
    group, implementation, server, _, _ = CASES[name]
    kind, port, payload = _target(name, {server: request.getfixturevalue(server)})
    outcome: dict[str, Any] = {}

    def load() -> None:
        outcome["latencies"], outcome["errors"] = _measure(kind, port, payload, SECONDS, WARMUP)

    benchmark.group = f"gateway v2: {group}, {CLIENTS} clients"
    benchmark.pedantic(load, rounds=1, iterations=1)
    latencies = np.array(outcome["latencies"])
    stats = {
        "req_per_s": len(latencies) / SECONDS,
        "p50_ms": float(np.percentile(latencies, 50) * 1000),
        "p99_ms": float(np.percentile(latencies, 99) * 1000),
        "errors": float(outcome["errors"]),
    }
    benchmark.extra_info.update(stats, clients=CLIENTS, seconds=SECONDS, implementation=implementation)
    benchmark.extra_info["correct"] = outcome["errors"] == 0
    rate, p50, p99 = stats["req_per_s"], stats["p50_ms"], stats["p99_ms"]
    print(f"\n{name:<26} {rate:>7.0f} req/s  p50 {p50:.2f} ms  p99 {p99:.2f} ms")
    assert outcome["errors"] == 0


def _goal(goal: str, value: float, target: float, *, higher: bool = True) -> dict[str, Any]:
    """A row of the report's goals (nexpo/bench_goals.py), issue 21's targets."""
    described = f"{goal} (issue 21, {CLIENTS} clients)"
    return {"goal": described, "value": value, "target": target, "higher": higher}


def test_goal_ratios(
    benchmark: Any, bare: Served, bare_encoder: Served, batched: Served, unbatched: Served
) -> None:
    """The issue's goals as ratios of interleaved 1-second rounds (the machine is shared: rounds
    alternate so each pair sees the same background load); medians reported, never asserted."""
    servers = {"bare": bare, "bare_encoder": bare_encoder, "batched": batched, "unbatched": unbatched}
    targets = {name: _target(name, servers) for name in CASES}
    rates: dict[str, list[float]] = {name: [] for name in CASES}
    p99: dict[str, list[float]] = {name: [] for name in CASES}

    native = {f"{name} (h2load)": targets[name] for name in H2LOAD_CASES} if h2load.H2LOAD else {}
    native_rates: dict[str, list[float]] = {name: [] for name in native}

    def rounds() -> None:
        for _ in range(ROUNDS):
            for name, (kind, port, payload) in targets.items():
                latencies, errors = _measure(kind, port, payload, 1.0, 0.2)
                assert errors == 0
                rates[name].append(len(latencies))
                p99[name].append(float(np.percentile(latencies, 99) * 1000))
            for name, (kind, port, payload) in native.items():
                per_second, failed = h2load.measure(kind, port, payload, 1, KEY)
                assert failed == 0
                native_rates[name].append(per_second)

    benchmark.group = "gateway v2: goal ratios (interleaved rounds)"  # before timing: it is read then
    benchmark.pedantic(rounds, rounds=1, iterations=1)
    rate = {name: float(np.median(v)) for name, v in rates.items()}
    tail = {name: float(np.median(v)) for name, v in p99.items()}
    ratios = {
        "rest_mlp_over_bare": rate["REST v2 binary, MLP"] / rate["bare onnxruntime JSON"],
        "rest_onnx_over_bare": rate["REST v2 binary, ONNX"] / rate["bare onnxruntime JSON"],
        "grpc_over_rest_mlp": rate["gRPC, MLP"] / rate["REST v2 binary, MLP"],
        "grpc_over_rest_onnx": rate["gRPC, ONNX"] / rate["REST v2 binary, ONNX"],
        "batched_over_unbatched_mlp": rate["REST v2 binary, MLP"] / rate["REST v2 unbatched, MLP"],
        "batched_over_unbatched_onnx": rate["REST v2 binary, ONNX"] / rate["REST v2 unbatched, ONNX"],
        "rest_encoder_over_bare": rate["REST v2 binary, encoder"] / rate["bare onnxruntime JSON, encoder"],
        "grpc_over_rest_encoder": rate["gRPC, encoder"] / rate["REST v2 binary, encoder"],
        "batched_over_unbatched_encoder": (
            rate["REST v2 binary, encoder"] / rate["REST v2 unbatched, encoder"]
        ),
    }
    for name, values in native_rates.items():
        rate[name] = float(np.median(values))
    if native:  # gRPC against REST with one C load generator for both (benchmarks/h2load.py)
        for model, short in (("ONNX", "onnx"), ("MLP", "mlp")):
            grpc_rate, rest_rate = rate[f"gRPC, {model} (h2load)"], rate[f"REST v2 binary, {model} (h2load)"]
            ratios[f"grpc_over_rest_{short}_h2load"] = grpc_rate / rest_rate
            unbatched = rate[f"REST v2 unbatched, {model} (h2load)"]
            ratios[f"batched_over_unbatched_{short}_h2load"] = rest_rate / unbatched
    bare_p99 = tail["bare onnxruntime JSON"]
    # per-case figures under their own keys: "req_per_s"/"p99_ms" are the report's single numbers
    benchmark.extra_info.update(ratios, rounds=ROUNDS, req_per_s_by_case=rate, p99_ms_by_case=tail)
    benchmark.extra_info["goals"] = [
        _goal("REST v2 binary ÷ bare FastAPI+onnxruntime, ONNX MLP (req/s)",
              ratios["rest_onnx_over_bare"], 2),
        _goal("REST v2 binary ÷ bare FastAPI+onnxruntime, safetensors MLP (req/s)",
              ratios["rest_mlp_over_bare"], 2),
        _goal("p99: REST v2 binary ONNX MLP ÷ bare", tail["REST v2 binary, ONNX"] / bare_p99, 1,
              higher=False),
        _goal("p99: REST v2 binary safetensors MLP ÷ bare", tail["REST v2 binary, MLP"] / bare_p99, 1,
              higher=False),
        _goal("gRPC ÷ REST v2 binary, ONNX MLP (req/s, Python clients)", ratios["grpc_over_rest_onnx"], 1),
        _goal("gRPC ÷ REST v2 binary, safetensors MLP (req/s, Python clients)", ratios["grpc_over_rest_mlp"],
              1),
        _goal("batching on ÷ off, safetensors MLP (req/s)", ratios["batched_over_unbatched_mlp"],
              2),
        _goal("batching on ÷ off, ONNX MLP (req/s)", ratios["batched_over_unbatched_onnx"], 2),
        _goal("REST v2 binary ÷ bare FastAPI+onnxruntime, encoder (req/s)", ratios["rest_encoder_over_bare"],
              2),
        _goal("p99: REST v2 binary encoder ÷ bare",
              tail["REST v2 binary, encoder"] / tail["bare onnxruntime JSON, encoder"], 1, higher=False),
        _goal("gRPC ÷ REST v2 binary, encoder (req/s, Python clients)", ratios["grpc_over_rest_encoder"], 1),
    ]  # fmt: skip
    # Batching's 2x target is the MLP's (issue 21). The encoder's on ÷ off ratio stays in the
    # ratios above, without a target: its compute dominates a request and its per-sample cost
    # at batch 64 is ~0.85x batch 1's (benchmarks/test_inference.py), so merging requests cannot
    # double its throughput.
    if native:
        benchmark.extra_info["goals"] += [
            _goal("gRPC ÷ REST v2 binary, ONNX MLP (req/s, h2load for both)",
                  ratios["grpc_over_rest_onnx_h2load"], 1),
            _goal("gRPC ÷ REST v2 binary, safetensors MLP (req/s, h2load for both)",
                  ratios["grpc_over_rest_mlp_h2load"], 1),
            _goal("batching on ÷ off, safetensors MLP (req/s, h2load)",
                  ratios["batched_over_unbatched_mlp_h2load"], 2),
            _goal("batching on ÷ off, ONNX MLP (req/s, h2load)",
                  ratios["batched_over_unbatched_onnx_h2load"], 2),
        ]  # fmt: skip
    benchmark.extra_info["correct"] = True
    lines = [f"  {n:<26} {rate[n]:>7.0f} req/s  p99 {tail[n]:.1f} ms" for n in CASES]
    lines += [f"  {n:<26} {rate[n]:>7.0f} req/s" for n in native]
    print(f"\nmedians over {ROUNDS} interleaved rounds:\n" + "\n".join(lines))
    print("\n".join(f"  {k}: {v:.2f}x" for k, v in ratios.items()))
    print("goals: REST v2 / bare >= 2 with p99 no higher; gRPC / REST >= 1; batched / unbatched >= 2")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "--benchmark-enable", "-s", "-q"]))

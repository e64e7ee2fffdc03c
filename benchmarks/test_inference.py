"""ONNX inference: nexpo.inference against onnxruntime in the same run, on the same thread count.

Models (built with onnx.helper, tests/unit/_inference_models.py): an MLP 64->256->128->10, a
2-conv CNN on 3x32x32 (BatchNorm, pooling), a one-block transformer encoder (d=128, 4 heads,
seq 32, ff 512), each at batch 1, 8 and 64; one ``benchmark.group`` per (model, batch).
onnxruntime runs with intra_op_num_threads = inter_op_num_threads = the thread count and every
graph optimisation on. Each result records ``correct`` (outputs within 1e-4·(1 + max|ref|)).
The report's goals (nexpo/bench_goals.py): throughput ≥ onnxruntime's in every group, and at batch 1
the median of one ``run`` (its p50 latency) no higher than onnxruntime's.

    .venv/bin/pytest benchmarks/test_inference.py --benchmark-enable --benchmark-only
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import nexpo

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
import _inference_models as models  # noqa: E402

from nexpo.inference import InferenceSession  # noqa: E402

MODELS: dict[str, tuple[Callable[[], Any], tuple[int, ...]]] = {
    "mlp": (models.mlp, (64,)),
    "cnn": (models.cnn, (3, 32, 32)),
    "encoder": (models.encoder, (32, 128)),
}
BATCHES = (1, 8, 64)
THREADS = (nexpo.get_num_threads(),)


@pytest.fixture(params=THREADS, ids=lambda t: f"{t}t")
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    count: int = request.param
    previous = nexpo.get_num_threads()
    nexpo.set_num_threads(count)
    try:
        yield count
    finally:
        nexpo.set_num_threads(previous)


_SESSIONS: dict[tuple[str, str, int], Any] = {}


def _session(impl: str, name: str, threads: int) -> Any:
    key = (impl, name, threads)
    if key not in _SESSIONS:
        data = MODELS[name][0]().SerializeToString()
        if impl == "nexpo":
            _SESSIONS[key] = InferenceSession(data)
        else:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = threads
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            _SESSIONS[key] = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return _SESSIONS[key]


@pytest.mark.parametrize("impl", ["nexpo", "onnxruntime"])
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", list(MODELS))
def test_inference(benchmark: BenchmarkFixture, threads: int, name: str, batch: int, impl: str) -> None:
    shape = MODELS[name][1]
    x = np.random.default_rng(batch).standard_normal((batch, *shape)).astype(np.float32)
    feed = {"x": x}
    sess = _session(impl, name, threads)
    want = _session("onnxruntime", name, threads).run(None, feed)[0]
    got = sess.run(None, feed)[0]
    benchmark.group = f"inference: {name} batch {batch}"  # one report table "inference"
    benchmark.extra_info.update({
        "implementation": impl,
        "model": name,
        "batch": batch,
        "samples": batch,  # throughput in rows/s; the median of one call is its p50 latency
        "threads": threads,
        "correct": bool(np.all(np.abs(got - want) <= 1e-4 * (1 + np.abs(want).max()))),
    })
    benchmark(sess.run, None, feed)

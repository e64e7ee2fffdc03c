"""Scheduler benchmarks: spawn+sync overhead in Nim (fibonacci-style, as nim-taskpools and weave
publish), no Python in the loop; and parallel efficiency of the kernels that run on the pool
(matmul n=2048, sha256_many over 1M messages) on 1 vs 2 worker threads.
``benchmarks/nim/bench_scheduler.nim`` prints JSON rows that land in ``extra_info``
(``overhead_ns_per_task_cpu`` is the goal's number: <= 100 ns).

    .venv/bin/pytest benchmarks/test_scheduler.py --benchmark-enable --benchmark-only
    .venv/bin/python benchmarks/nim/run.py scheduler -- 30 5      # the same, directly
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import nexpo
from nexpo.crypto import sha256_many
from nexpo.kernels import matmul

sys.path.insert(0, str(Path(__file__).parent / "nim"))
import run as nim_bench


def test_nim_fib_spawn_sync(benchmark: Any) -> None:
    benchmark.group = "scheduler: fib(30) spawn+sync, Nim level (see extra_info)"
    rows = benchmark.pedantic(lambda: nim_bench.run_bench("scheduler", "30", "5"), rounds=1, iterations=1)
    benchmark.extra_info["rows"] = rows
    benchmark.extra_info["tasks"] = rows[0]["tasks"] if rows else 0
    benchmark.extra_info["correct"] = len(rows) == 3


def test_nim_fma_two_cpus(benchmark: Any) -> None:
    """What a second CPU gives, per CPU-second of each thread (robust to other processes):
    register-only AVX-512 FMA, the clock next to an AVX-512 neighbour, GEMM's micro-kernel and
    half-matrix GEMM slabs (benchmarks/nim/bench_fma.nim; ``ratio`` 2.0 = perfect scaling)."""
    benchmark.group = "scheduler: 2-CPU scaling, Nim level (see extra_info)"
    args = ("reps=5", "discards=10", "only=fma-zmm-f32,clock-vs-fma-zmm,uk-avx512,gemm-slab-avx512")
    rows = benchmark.pedantic(lambda: nim_bench.run_bench("fma", *args), rounds=1, iterations=1)
    benchmark.extra_info["rows"] = rows
    benchmark.extra_info["correct"] = len(rows) == 4


def test_python_stats_roundtrip(benchmark: Any) -> None:
    """The cost of reading the scheduler counters (what the Prometheus exporter will do)."""
    benchmark.group = "scheduler: stats()"
    st = benchmark(nexpo.scheduler.stats)
    benchmark.extra_info["correct"] = st["workers"] == nexpo.get_num_threads()


# --- parallel efficiency: the same kernel on 1 and on 2 worker threads ------------------------
# The 1-thread run is the "peer" (implementation "serial: nexpo on 1 thread"), so the report's
# ratio is the speedup on 2 cores (issue goal: >= 1.8x for both kernels).


@pytest.fixture
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    n: int = request.param
    before = nexpo.get_num_threads()
    nexpo.set_num_threads(n)
    # numpy's OpenBLAS workers (started by earlier benchmarks in this process) spin for a while
    # after their last call; on 2 cores that spinning takes the second core from our workers.
    # One BLAS thread, and a pause for the spinning to end, keep the 2-thread run honest.
    with threadpool_limits(limits=1, user_api="blas"):
        time.sleep(0.5)
        yield n
    nexpo.set_num_threads(before)


def _label(threads: int) -> str:
    return "nexpo on 2 threads" if threads == 2 else "serial: nexpo on 1 thread"


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
def test_parallel_matmul_2048(benchmark: Any, threads: int) -> None:
    n = 2048
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    benchmark.group = "scheduler: parallel efficiency, matmul f32 n=2048"
    benchmark.extra_info.update(implementation=_label(threads), threads=threads, flops=2 * n**3, n=n)
    out = benchmark.pedantic(matmul, args=(a, b), rounds=5, iterations=1, warmup_rounds=1)
    ref = a[:64].astype(np.float64) @ b.astype(np.float64)
    benchmark.extra_info["correct"] = bool(np.allclose(out[:64], ref, rtol=1e-3, atol=1e-2))


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
def test_parallel_sha256_many_1m(benchmark: Any, threads: int) -> None:
    count, size = 1_000_000, 64
    msgs = np.random.default_rng(1).integers(0, 256, (count, size), dtype=np.uint8)
    benchmark.group = "scheduler: parallel efficiency, sha256_many 1M x 64 B"
    benchmark.extra_info.update(implementation=_label(threads), threads=threads, messages=count,
                                message_bytes=size)
    out = benchmark.pedantic(sha256_many, args=(msgs,), rounds=5, iterations=1, warmup_rounds=1)
    picks = [0, 1, count // 2, count - 1]
    benchmark.extra_info["correct"] = all(
        bytes(out[i]) == hashlib.sha256(msgs[i].tobytes()).digest() for i in picks
    )

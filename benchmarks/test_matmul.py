"""matmul: nexpo's GEMM against numpy in the same run, plus OpenBLAS's AVX-512 kernel and pure Python.

Peers:
- ``numpy``: numpy as this environment configures it (its OpenBLAS kernel is recorded in
  ``extra_info["numpy_blas"]``), limited to the same thread count with threadpoolctl;
- OpenBLAS with ``OPENBLAS_CORETYPE=SkylakeX`` (AVX-512), which can only be chosen when OpenBLAS
  loads: timed in a subprocess (benchmarks/matmul_numpy_timer.py) right after nexpo on the same
  case, and recorded beside nexpo's result as ``extra_info["openblas_skylakex_gflops"]``;
- a pure-Python triple loop at n = 64 and 128, to show what the native path buys.

Every result records ``flops`` (2·m·n·k per call), ``n`` and ``correct`` (nexpo's result within
the GEMM error bound of numpy's float64 product).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from modes import sizes
from pytest_benchmark.fixture import BenchmarkFixture
from threadpoolctl import threadpool_info, threadpool_limits

import nexpo
from nexpo.kernels import matmul

Array = npt.NDArray[Any]

SIZES = sizes(quick=[64, 256, 1024], full=[64, 128, 256, 512, 1024, 2048])
DTYPES = ["float32", "float64"]
THREADS = [1, 2]
# m, k, n: layers of batch-1 and batch-8 inference (the GEMM's small path, m <= 8)
SKINNY = sizes(quick=[(1, 64, 256), (1, 256, 128), (1, 1024, 1024), (8, 1024, 1024)],
               full=[(1, 64, 256), (1, 256, 128), (1, 1024, 1024), (2, 256, 256), (4, 512, 512),
                     (8, 128, 512), (8, 1024, 1024)])
TIMER = Path(__file__).with_name("matmul_numpy_timer.py")


def _numpy_blas() -> str:
    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    return f"{blas[0].get('internal_api')} {blas[0].get('architecture')}" if blas else "unknown"


class NumpyProcess:
    """numpy in a subprocess with other environment variables, timing cases on request."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(TIMER)], env={**os.environ, **env},
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.architecture = str(self._read().get("architecture"))

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{TIMER.name} exited with status {self.proc.wait()}")
        result: dict[str, Any] = json.loads(line)
        return result

    def gflops(self, case: tuple[int, int, int, str, int]) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        return float(self._read()["gflops"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def skylakex() -> Iterator[NumpyProcess]:
    """numpy with OPENBLAS_CORETYPE=SkylakeX (OpenBLAS's AVX-512 kernels), in a subprocess."""
    process = NumpyProcess({"OPENBLAS_CORETYPE": "SkylakeX"})
    try:
        yield process
    finally:
        process.close()


@pytest.fixture
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run nexpo (and numpy's BLAS) on the requested number of threads, then restore."""
    count: int = request.param
    previous = nexpo.get_num_threads()
    nexpo.set_num_threads(count)
    try:
        with threadpool_limits(limits=count, user_api="blas"):
            yield count
    finally:
        nexpo.set_num_threads(previous)


def _operands(m: int, k: int, n: int, dtype: str) -> tuple[Array, Array]:
    rng = np.random.default_rng(42)
    return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)


def _correct(c: Array, a: Array, b: Array) -> bool:
    """Within the GEMM error bound |C - C_ref| <= 4·k·eps·(|A||B|), elementwise."""
    eps = np.finfo(c.dtype).eps
    ref = a.astype(np.float64) @ b.astype(np.float64)
    bound = 4 * a.shape[1] * eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    return bool(np.all(np.abs(c - ref) <= bound))


def _record(
    benchmark: BenchmarkFixture,
    impl: str,
    case: tuple[int, int, int, str, int],
    correct: bool,
    skylakex: NumpyProcess,
) -> None:
    """extra_info for the report; nexpo's entries also carry OpenBLAS-SkylakeX's GFLOPS, measured
    in the subprocess right after this benchmark."""
    m, k, n, dtype, t = case
    extra: dict[str, Any] = {
        "implementation": impl,
        "flops": 2 * m * n * k,
        "n": n,
        "m": m,
        "k": k,
        "dtype": dtype,
        "threads": t,
        "series": f"{dtype} {t} thread{'s' if t > 1 else ''}",
        "correct": correct,
        "numpy_blas": _numpy_blas(),
        "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
    }
    if impl == "nexpo":
        extra["openblas_skylakex_gflops"] = skylakex.gflops(case)
        extra["openblas_skylakex_architecture"] = skylakex.architecture
        # A peer timed outside pytest-benchmark: the report lists it as its own row.
        extra["external_peers"] = [
            {
                "implementation": f"numpy, OPENBLAS_CORETYPE=SkylakeX (subprocess, {skylakex.architecture})",
                "throughput": extra["openblas_skylakex_gflops"],
                "unit": "GFLOPS",
            }
        ]
    benchmark.extra_info.update(extra)


IMPLS: dict[str, Callable[[Array, Array], Array]] = {"nexpo": matmul, "numpy": np.matmul}


SQUARE = [(dtype, n) for dtype in DTYPES for n in SIZES]


@pytest.mark.parametrize("threads", THREADS, indirect=True, ids=lambda t: f"{t}t")
@pytest.mark.parametrize("case", SQUARE, ids=[f"{dtype}-{n}" for dtype, n in SQUARE])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_matmul_square(
    benchmark: BenchmarkFixture, skylakex: NumpyProcess, impl: str, case: tuple[str, int], threads: int
) -> None:
    dtype, n = case
    a, b = _operands(n, n, n, dtype)
    benchmark.group = f"matmul: {dtype} {threads}t n={n}"
    fn = IMPLS[impl]
    c = benchmark(fn, a, b)
    _record(benchmark, impl, (n, n, n, dtype, threads), _correct(c, a, b), skylakex)


@pytest.mark.parametrize("threads", THREADS, indirect=True, ids=lambda t: f"{t}t")
@pytest.mark.parametrize("shape", SKINNY, ids=[f"{m}x{k}x{n}" for m, k, n in SKINNY])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_matmul_skinny(
    benchmark: BenchmarkFixture, skylakex: NumpyProcess, impl: str, shape: tuple[int, int, int],
    threads: int,
) -> None:
    m, k, n = shape
    a, b = _operands(m, k, n, "float32")
    benchmark.group = f"matmul: skinny {m}x{k} @ {k}x{n} float32 {threads}t"
    c = benchmark(IMPLS[impl], a, b)
    _record(benchmark, impl, (m, k, n, "float32", threads), _correct(c, a, b), skylakex)


def _python_matmul(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    bt = list(zip(*b, strict=True))
    return [[sum(x * y for x, y in zip(row, col, strict=True)) for col in bt] for row in a]


@pytest.mark.parametrize("n", [64, 128])
def test_matmul_pure_python(benchmark: BenchmarkFixture, n: int) -> None:
    a, b = _operands(n, n, n, "float64")
    la, lb = a.tolist(), b.tolist()
    benchmark.group = f"matmul: float64 1t n={n}"
    c = benchmark.pedantic(_python_matmul, args=(la, lb), rounds=3, iterations=1)
    benchmark.extra_info.update(
        implementation="pure Python (triple loop)", flops=2 * n**3, n=n, dtype="float64", threads=1,
        series="float64 1 thread", correct=_correct(np.array(c), a, b),
    )

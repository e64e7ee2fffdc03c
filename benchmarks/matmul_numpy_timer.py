"""Time ``numpy.matmul`` in a separate process, on request: benchmarks/test_matmul.py runs it with
``OPENBLAS_CORETYPE=SkylakeX`` (OpenBLAS reads the variable once, when it loads) and asks for
each case right after measuring nexpo on it, so both see the same load on a shared machine.

Protocol (one JSON document per line): the first output line is
``{"architecture": <the kernel OpenBLAS picked>}``; then for each input line
``[m, k, n, dtype, threads]`` it prints ``{"median_s": ..., "gflops": ...}``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


def time_case(m: int, k: int, n: int, dtype: str, threads: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ b  # warm up: thread pool, page faults
        start = time.perf_counter()
        a @ b
        one = max(time.perf_counter() - start, 1e-6)
        times = []
        for _ in range(max(5, min(2000, int(0.5 / one)))):  # ~0.5 s, at least 5 calls
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"median_s": median, "gflops": 2.0 * m * n * k / median / 1e9}


def main() -> None:
    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    print(json.dumps({"architecture": str(blas[0].get("architecture")) if blas else "unknown"}), flush=True)
    for line in sys.stdin:
        if line.strip():
            m, k, n, dtype, threads = json.loads(line)
            print(json.dumps(time_case(m, k, n, dtype, threads)), flush=True)


if __name__ == "__main__":
    main()

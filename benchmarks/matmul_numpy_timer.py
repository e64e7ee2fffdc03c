"""Time ``numpy.matmul`` in this process and print JSON: run by benchmarks/test_matmul.py in a
subprocess with a different ``OPENBLAS_CORETYPE`` (OpenBLAS reads it once, at load time).

    OPENBLAS_CORETYPE=SkylakeX python benchmarks/matmul_numpy_timer.py 'CASES-JSON'

CASES-JSON is a list of ``[m, k, n, dtype, threads]``; the output maps ``"m,k,n,dtype,threads"``
to ``{"median_s": ..., "gflops": ...}``, plus ``"architecture"``: the kernel OpenBLAS picked.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits


def _time_case(m: int, k: int, n: int, dtype: str, threads: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    flops = 2.0 * m * n * k
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ b  # warm up: thread pool, page faults
        # enough calls for ~0.5 s, at least 5
        start = time.perf_counter()
        a @ b
        one = max(time.perf_counter() - start, 1e-6)
        times = []
        for _ in range(max(5, min(200, int(0.5 / one)))):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"median_s": median, "gflops": flops / median / 1e9}


def main() -> None:
    cases = json.loads(sys.argv[1])
    out: dict[str, object] = {}
    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    out["architecture"] = str(blas[0].get("architecture", "unknown")) if blas else "unknown"
    for m, k, n, dtype, threads in cases:
        out[f"{m},{k},{n},{dtype},{threads}"] = _time_case(m, k, n, dtype, threads)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

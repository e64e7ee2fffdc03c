"""The cost of crossing into the Nim core, next to a plain Python call (goal: < 150 ns)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import nexpo
from nexpo._native import lib


def _python_noop() -> None:
    return None


CASES: dict[str, Callable[[], object]] = {
    "python function": _python_noop,
    "nexpo native noop (cffi)": lib.nexpo_noop,
    "nexpo.get_num_threads (wrapper + native)": nexpo.get_num_threads,
}


@pytest.mark.parametrize("impl", list(CASES))
def test_call_overhead(benchmark: BenchmarkFixture, impl: str) -> None:
    fn = CASES[impl]
    benchmark.group = "ffi: call overhead"
    benchmark.extra_info.update(implementation=impl, calls=10_000, correct=True)
    benchmark.pedantic(_loop, args=(fn,), rounds=50, iterations=1, warmup_rounds=2)


def _loop(fn: Callable[[], object]) -> None:
    # 10,000 calls per round so timer resolution does not dominate; ns/call = mean / 10,000.
    for _ in range(10_000):
        fn()

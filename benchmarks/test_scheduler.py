"""Scheduler benchmarks: spawn+sync overhead in Nim (fibonacci-style, as nim-taskpools and weave
publish), no Python in the loop. ``benchmarks/nim/bench_scheduler.nim`` prints JSON rows that land
in ``extra_info`` (``overhead_ns_per_task_cpu`` is the goal's number: <= 100 ns).

    .venv/bin/pytest benchmarks/test_scheduler.py --benchmark-enable --benchmark-only
    .venv/bin/python benchmarks/nim/run.py scheduler -- 30 5      # the same, directly
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import nexpo

sys.path.insert(0, str(Path(__file__).parent / "nim"))
import run as nim_bench


def test_nim_fib_spawn_sync(benchmark: Any) -> None:
    benchmark.group = "scheduler: fib(30) spawn+sync, Nim level (see extra_info)"
    rows = benchmark.pedantic(lambda: nim_bench.run_bench("scheduler", "30", "5"), rounds=1, iterations=1)
    benchmark.extra_info["rows"] = rows
    benchmark.extra_info["tasks"] = rows[0]["tasks"] if rows else 0
    benchmark.extra_info["correct"] = len(rows) == 3


def test_python_stats_roundtrip(benchmark: Any) -> None:
    """The cost of reading the scheduler counters (what the Prometheus exporter will do)."""
    benchmark.group = "scheduler: stats()"
    st = benchmark(nexpo.scheduler.stats)
    benchmark.extra_info["correct"] = st["workers"] == nexpo.get_num_threads()

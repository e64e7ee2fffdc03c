"""The native work-stealing scheduler that runs nexpo's parallel kernels."""

from __future__ import annotations

import operator
from typing import TypedDict

from nexpo._native import check, ffi, lib

__all__ = ["SchedulerStats", "get_num_threads", "set_num_threads", "stats"]


class SchedulerStats(TypedDict):
    """Per-worker counters; list index = worker."""

    workers: int
    spawned: list[int]
    executed: list[int]
    stolen: list[int]
    parks: list[int]


def get_num_threads() -> int:
    """Worker threads the native kernels use (default: the cores this process may run on)."""
    return int(lib.nexpo_get_num_threads())


def set_num_threads(n: int) -> None:
    """Resize the native worker pool to ``n`` threads (1..1024)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    n = operator.index(n)  # a plain int: a subclass's comparisons could lie
    if not 1 <= n <= 1024:
        raise ValueError(f"n must be between 1 and 1024, got {n}")
    check(lib.nexpo_set_num_threads(n))


def stats() -> SchedulerStats:
    """Tasks spawned, executed and stolen, and parks, per worker."""
    workers = ffi.new("int32_t *")
    cap = 4 * max(get_num_threads(), 1) + 64
    while True:
        out = ffi.new("uint64_t[]", cap)
        status = lib.nexpo_scheduler_stats(out, cap, workers)
        if status == lib.NEXPO_EINVAL and 4 * workers[0] > cap:
            cap = 4 * workers[0]  # the pool grew between the two calls
            continue
        check(status)
        break
    n = int(workers[0])
    return SchedulerStats(
        workers=n,
        spawned=[int(out[4 * w]) for w in range(n)],
        executed=[int(out[4 * w + 1]) for w in range(n)],
        stolen=[int(out[4 * w + 2]) for w in range(n)],
        parks=[int(out[4 * w + 3]) for w in range(n)],
    )

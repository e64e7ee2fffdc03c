"""The native work-stealing scheduler that runs nexpo's parallel kernels."""

from __future__ import annotations

from nexpo._native import check, lib

__all__ = ["get_num_threads", "set_num_threads"]


def get_num_threads() -> int:
    """Worker threads the native kernels use (default: the cores this process may run on)."""
    return int(lib.nexpo_get_num_threads())


def set_num_threads(n: int) -> None:
    """Resize the native worker pool to ``n`` threads (1..1024)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, not {type(n).__name__}")
    if not 1 <= n <= 1024:
        raise ValueError(f"n must be between 1 and 1024, got {n}")
    check(lib.nexpo_set_num_threads(n))

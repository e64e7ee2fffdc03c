"""Benchmark sizes by mode. ``NEXPO_BENCH_MODE=quick`` (what `nexpo bench --quick` sets) picks
the small sizes so the whole suite runs in a few minutes on 2 cores; ``full`` runs every size."""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")

MODE = os.environ.get("NEXPO_BENCH_MODE", "full")


def sizes(quick: list[T], full: list[T]) -> list[T]:
    """The parameter list for the current mode."""
    return quick if MODE == "quick" else full

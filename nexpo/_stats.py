"""Plain-int aggregates the hot paths update; ``nexpo.metrics.flush()`` turns them into Prometheus.

Updating a prometheus-client metric costs about a microsecond (a lock, and in multiprocess mode an
mmap write); an actor's message loop runs in well under that. So hot paths only bump attributes
here, and the metrics module pushes the deltas to the real collectors at scrape time and on a
timer (``ActorSystem(metrics_interval=...)``).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Final

# The actor loop files a processing time of d nanoseconds under ``(d - 1).bit_length()`` (one
# integer op, half the cost of bisecting float bounds): slot k holds 2**(k-1) < d <= 2**k. The
# Prometheus histogram therefore uses power-of-two bounds, 2**10 ns (~1 µs) .. 2**33 ns (~8.6 s).
LOG2_SLOTS: Final = 64
FIRST_BOUND_LOG2: Final = 10
LAST_BOUND_LOG2: Final = 33
PROCESSING_BUCKETS: Final = tuple(2**k / 1e9 for k in range(FIRST_BOUND_LOG2, LAST_BOUND_LOG2 + 1))


def fold_log2(slots: list[int]) -> list[int]:
    """Per-Prometheus-bucket (non-cumulative) counts from log2 slots; the last entry is +Inf."""
    folded = [0] * (len(PROCESSING_BUCKETS) + 1)
    for k, count in enumerate(slots):
        if count:
            folded[min(max(k - FIRST_BOUND_LOG2, 0), len(PROCESSING_BUCKETS))] += count
    return folded


# Guards creation of new entries (spawns and scrapes may run on different threads).
_lock: Final = threading.Lock()


class ActorClassStats:
    """Counters for every actor of one class, summed over the process's lifetime."""

    __slots__ = ("dead_letters", "failures", "label", "live", "log2_slots", "nanos", "processed", "restarts")

    def __init__(self, label: str) -> None:
        self.label = label
        self.processed = 0
        self.failures = 0
        self.restarts = 0
        self.dead_letters = 0
        self.nanos = 0  # total processing time
        self.log2_slots = [0] * LOG2_SLOTS  # processing times by (ns - 1).bit_length()
        # Live actor cells of this class (each has a ``queue``), for the mailbox depth gauge.
        self.live: weakref.WeakSet[Any] = weakref.WeakSet()

    def mailbox_depth(self) -> int:
        # A scrape may run on another thread while the event loop spawns actors: iterating a
        # WeakSet that grows meanwhile raises RuntimeError, so take another snapshot then.
        for _ in range(10):
            try:
                cells = list(self.live)
            except RuntimeError:
                continue
            return sum(len(cell.queue) for cell in cells)
        return 0


class StreamStats:
    """Items accepted and items dropped by every stream sharing one name."""

    __slots__ = ("dropped", "items", "label", "policy")

    def __init__(self, label: str, policy: str) -> None:
        self.label = label
        self.policy = policy
        self.items = 0
        self.dropped = 0


actor_classes: Final[dict[str, ActorClassStats]] = {}
streams: Final[dict[tuple[str, str], StreamStats]] = {}
# Circuit name -> current state code (0 closed, 1 open, 2 half-open).
circuit_states: Final[dict[str, int]] = {}
# (circuit, from_state, to_state) -> transitions.
circuit_transitions: Final[dict[tuple[str, str, str], int]] = {}
bulkhead_rejections: Final[dict[str, int]] = {}


def actor_class(cls: type) -> ActorClassStats:
    label = cls.__qualname__
    stats = actor_classes.get(label)
    if stats is None:
        with _lock:
            stats = actor_classes.setdefault(label, ActorClassStats(label))
    return stats


def stream(label: str, policy: str) -> StreamStats:
    key = (label, policy)
    stats = streams.get(key)
    if stats is None:
        with _lock:
            stats = streams.setdefault(key, StreamStats(label, policy))
    return stats


def circuit_transition(name: str, old: str, new: str, code: int) -> None:
    key = (name, old, new)
    with _lock:
        circuit_transitions[key] = circuit_transitions.get(key, 0) + 1
        circuit_states[name] = code


def circuit_created(name: str, code: int) -> None:
    with _lock:
        circuit_states.setdefault(name, code)


def bulkhead_rejected(name: str) -> None:
    with _lock:
        bulkhead_rejections[name] = bulkhead_rejections.get(name, 0) + 1


def bulkhead_created(name: str) -> None:
    with _lock:
        bulkhead_rejections.setdefault(name, 0)

"""Prometheus metrics of nexpo, all registered here, in ``REGISTRY`` (prometheus-client's default).

Names follow Prometheus conventions (``nexpo_`` prefix, counters end in ``_total``, durations in
``_seconds``):

- per actor class (label ``actor_class``): ``nexpo_actor_messages_processed_total``,
  ``nexpo_actor_mailbox_depth``, ``nexpo_actor_processing_seconds`` (histogram),
  ``nexpo_actor_failures_total``, ``nexpo_actor_restarts_total``, ``nexpo_actor_dead_letters_total``;
- ``nexpo_circuit_state{circuit}`` (0 closed, 1 open, 2 half-open),
  ``nexpo_circuit_transitions_total{circuit,from_state,to_state}``,
  ``nexpo_bulkhead_rejections_total{bulkhead}``;
- ``nexpo_stream_items_total{stream,policy}``, ``nexpo_stream_dropped_total{stream,policy}``;
- native runtime, read at scrape time by ``NativeCollector``: ``nexpo_scheduler_workers``,
  ``nexpo_scheduler_tasks_{spawned,executed,stolen}_total{worker}``,
  ``nexpo_scheduler_parks_total{worker}``, ``nexpo_kernel_calls_total{kernel}``,
  ``nexpo_kernel_bytes_total{kernel}``;
- this process, from psutil, as plain gauges: ``nexpo_process_cpu_seconds``,
  ``nexpo_process_resident_memory_bytes``, ``nexpo_process_open_files``,
  ``nexpo_process_open_fds``. (prometheus-client's own process collector vanishes in
  multiprocess mode; these are ordinary gauges, so they survive it, one series per pid.)

Cheap hot paths: actors, streams, circuits and bulkheads only bump plain ints (``nexpo._stats``).
``flush()`` pushes what changed into the collectors; ``exposition()`` flushes first, and every
``ActorSystem`` flushes every ``metrics_interval`` seconds (so other worker processes' numbers
reach the multiprocess files too).

Exposing: the gateway's ``/metrics`` endpoint calls ``exposition(request.headers.get("accept"))``
and returns the bytes with the content type it gets back. Multiprocess mode (several worker
processes, e.g. gunicorn/uvicorn workers): set ``PROMETHEUS_MULTIPROC_DIR`` to an empty,
writable directory *before* anything imports prometheus_client (the process manager's
environment or the container spec), wipe it when the server starts, and call
``mark_process_dead(pid)`` from the process manager's child-exit hook (``exposition()`` also drops
the live gauges of pids that no longer exist, for workers killed without a hook). ``exposition()``
then aggregates every worker's files (counters and histograms summed, mailbox depth summed over
live workers, circuit state the worst among live workers, process gauges one series per pid).
The native scheduler and kernel counters are then real multiprocess counters too: ``flush()``
adds what the Nim core counted since the last flush, so their sums over workers only grow
(reading them at scrape time would show the scraped process's counts, a different one per scrape);
``nexpo_scheduler_workers`` becomes one series per pid, like the process gauges. Workers that do
not serve the scrape are as fresh as their last flush (the gateway's flush every second).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import prometheus_client
import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from nexpo import _info, _stats, scheduler

__all__ = [
    "REGISTRY",
    "NativeCollector",
    "exposition",
    "flush",
    "mark_process_dead",
    "multiprocess_mode",
    "prune_dead_processes",
]

# prometheus-client's default registry: an application exposing it (its own metrics and
# prometheus-client's process/GC collectors) shows nexpo's too, and ``exposition()`` shows theirs.
REGISTRY: Final = prometheus_client.REGISTRY

_ACTOR = ["actor_class"]
ACTOR_MESSAGES: Final = Counter(
    "nexpo_actor_messages_processed", "Messages an actor class handled (tells and asks).", _ACTOR,
    registry=REGISTRY,
)  # fmt: skip
ACTOR_MAILBOX: Final = Gauge(
    "nexpo_actor_mailbox_depth", "Messages waiting in the mailboxes of an actor class.", _ACTOR,
    registry=REGISTRY, multiprocess_mode="livesum",
)  # fmt: skip
ACTOR_PROCESSING: Final = Histogram(
    "nexpo_actor_processing_seconds", "Time an actor class spent per message.", _ACTOR,
    registry=REGISTRY, buckets=_stats.PROCESSING_BUCKETS,
)  # fmt: skip
ACTOR_FAILURES: Final = Counter(
    "nexpo_actor_failures", "Exceptions raised by an actor class (receive, hooks, asks).", _ACTOR,
    registry=REGISTRY,
)  # fmt: skip
ACTOR_RESTARTS: Final = Counter(
    "nexpo_actor_restarts", "Restarts of actors of a class by supervisors or the system.", _ACTOR,
    registry=REGISTRY,
)  # fmt: skip
ACTOR_DEAD_LETTERS: Final = Counter(
    "nexpo_actor_dead_letters", "Messages for actors of a class that could not be delivered.", _ACTOR,
    registry=REGISTRY,
)  # fmt: skip
CIRCUIT_STATE: Final = Gauge(
    "nexpo_circuit_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.", ["circuit"],
    registry=REGISTRY, multiprocess_mode="livemax",
)  # fmt: skip
CIRCUIT_TRANSITIONS: Final = Counter(
    "nexpo_circuit_transitions", "Circuit breaker state changes.", ["circuit", "from_state", "to_state"],
    registry=REGISTRY,
)  # fmt: skip
BULKHEAD_REJECTIONS: Final = Counter(
    "nexpo_bulkhead_rejections", "Calls a bulkhead rejected with BulkheadFull.", ["bulkhead"],
    registry=REGISTRY,
)  # fmt: skip
STREAM_ITEMS: Final = Counter(
    "nexpo_stream_items", "Items a stream accepted.", ["stream", "policy"], registry=REGISTRY,
)  # fmt: skip
STREAM_DROPPED: Final = Counter(
    "nexpo_stream_dropped", "Items a stream's policy discarded.", ["stream", "policy"], registry=REGISTRY,
)  # fmt: skip
PROCESS_CPU: Final = Gauge(
    "nexpo_process_cpu_seconds", "User plus system CPU time of this process.",
    registry=REGISTRY, multiprocess_mode="liveall",
)  # fmt: skip
PROCESS_MEMORY: Final = Gauge(
    "nexpo_process_resident_memory_bytes", "Resident memory of this process.",
    registry=REGISTRY, multiprocess_mode="liveall",
)  # fmt: skip
PROCESS_OPEN_FILES: Final = Gauge(
    "nexpo_process_open_files", "Regular files this process has open.",
    registry=REGISTRY, multiprocess_mode="liveall",
)  # fmt: skip
PROCESS_OPEN_FDS: Final = Gauge(
    "nexpo_process_open_fds", "File descriptors (files, sockets, pipes) this process has open.",
    registry=REGISTRY, multiprocess_mode="liveall",
)  # fmt: skip


class NativeCollector(Collector):
    """The Nim core's counters, read when scraped: scheduler per worker, kernels by name."""

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        sched = scheduler.stats()
        kernels = _info.kernel_stats()
        return self._families(sched, kernels)

    @staticmethod
    def _families(
        sched: scheduler.SchedulerStats | None = None, kernels: dict[str, dict[str, int]] | None = None
    ) -> list[Metric]:
        workers = GaugeMetricFamily("nexpo_scheduler_workers", "Worker threads of the native scheduler.")
        per_worker = {
            key: CounterMetricFamily(f"nexpo_scheduler_{name}", help_text, labels=["worker"])
            for key, name, help_text in (
                ("spawned", "tasks_spawned", "Tasks spawned on a native scheduler worker."),
                ("executed", "tasks_executed", "Tasks a native scheduler worker ran."),
                ("stolen", "tasks_stolen", "Tasks a native scheduler worker stole from another."),
                ("parks", "parks", "Times a native scheduler worker went to sleep for lack of work."),
            )
        }
        calls = CounterMetricFamily("nexpo_kernel_calls", "Calls of a native kernel.", labels=["kernel"])
        nbytes = CounterMetricFamily(
            "nexpo_kernel_bytes", "Input bytes a native kernel processed.", labels=["kernel"]
        )
        if sched is not None:
            workers.add_metric([], sched["workers"])
            for key, family in per_worker.items():
                values: list[int] = sched[key]  # type: ignore[literal-required]
                for worker, value in enumerate(values):
                    family.add_metric([str(worker)], value)
        if kernels is not None:
            for kernel, counts in sorted(kernels.items()):
                calls.add_metric([kernel], counts["calls"])
                nbytes.add_metric([kernel], counts["bytes"])
        return [workers, *per_worker.values(), calls, nbytes]


def multiprocess_mode() -> bool:
    """True when prometheus-client writes to ``PROMETHEUS_MULTIPROC_DIR`` (several workers)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class _NativeCounters:
    """The Nim core's counters as multiprocess counters (and the pool size as a per-pid gauge);
    ``push()`` adds the growth since the last push."""

    def __init__(self) -> None:
        self.workers = Gauge(
            "nexpo_scheduler_workers", "Worker threads of the native scheduler.",
            registry=REGISTRY, multiprocess_mode="liveall",
        )  # fmt: skip
        self.per_worker = {
            key: Counter(f"nexpo_scheduler_{name}", help_text, ["worker"], registry=REGISTRY)
            for key, name, help_text in (
                ("spawned", "tasks_spawned", "Tasks spawned on a native scheduler worker."),
                ("executed", "tasks_executed", "Tasks a native scheduler worker ran."),
                ("stolen", "tasks_stolen", "Tasks a native scheduler worker stole from another."),
                ("parks", "parks", "Times a native scheduler worker went to sleep for lack of work."),
            )
        }
        self.calls = Counter("nexpo_kernel_calls", "Calls of a native kernel.", ["kernel"], registry=REGISTRY)
        self.nbytes = Counter(
            "nexpo_kernel_bytes", "Input bytes a native kernel processed.", ["kernel"], registry=REGISTRY
        )
        self._pushed: dict[tuple[str, str], int] = {}

    def _add(self, counter: Counter, key: str, label: str, now: int) -> None:
        before = self._pushed.get((key, label), 0)
        # A smaller value means the native counter restarted (a resized pool): all of it is new.
        counter.labels(label).inc(now - before if now >= before else now)
        self._pushed[(key, label)] = now

    def push(self) -> None:
        sched = scheduler.stats()
        self.workers.set(sched["workers"])
        for key, counter in self.per_worker.items():
            values: list[int] = sched[key]  # type: ignore[literal-required]
            for worker, value in enumerate(values):
                self._add(counter, key, str(worker), value)
        for kernel, counts in sorted(_info.kernel_stats().items()):
            self._add(self.calls, "calls", kernel, counts["calls"])
            self._add(self.nbytes, "bytes", kernel, counts["bytes"])


# One process: read the native counters when scraped. Several: publish them into the shared files
# (decided at import, like prometheus-client's own choice of file-backed values).
_native_counters: Final = _NativeCounters() if multiprocess_mode() else None
if _native_counters is None:
    REGISTRY.register(NativeCollector())


# -- pushing the hot paths' plain counters into the collectors ----------------------------------

_flush_lock: Final = threading.Lock()
_PROCESS: Final = psutil.Process()


class _Pushed:
    """What a flush already pushed for one actor class."""

    __slots__ = ("dead_letters", "failures", "nanos", "processed", "restarts", "slots")

    def __init__(self) -> None:
        self.processed = self.failures = self.restarts = self.dead_letters = self.nanos = 0
        self.slots = [0] * _stats.LOG2_SLOTS


_pushed_actors: dict[str, _Pushed] = {}
_pushed_streams: dict[tuple[str, str], tuple[int, int]] = {}
_pushed_transitions: dict[tuple[str, str, str], int] = {}
_pushed_rejections: dict[str, int] = {}


def _histogram_add(child: Histogram, bucket_counts: list[int], seconds: float) -> None:
    """Add many observations at once (prometheus-client only has observe(), one per call).

    Uses the child's per-bucket values, which is what observe() increments; in multiprocess
    mode these are the mmap-backed values, so the aggregation stays exact."""
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if buckets is None or total is None or len(buckets) != len(bucket_counts):
        bounds = [*_stats.PROCESSING_BUCKETS, _stats.PROCESSING_BUCKETS[-1] * 2]
        for bound, count in zip(bounds, bucket_counts, strict=True):
            for _ in range(count):
                child.observe(bound)
        return
    for value, count in zip(buckets, bucket_counts, strict=True):
        if count:
            value.inc(count)
    total.inc(seconds)


def _flush_actors() -> None:
    for label, stats in list(_stats.actor_classes.items()):
        pushed = _pushed_actors.setdefault(label, _Pushed())
        for attr, counter in (
            ("processed", ACTOR_MESSAGES),
            ("failures", ACTOR_FAILURES),
            ("restarts", ACTOR_RESTARTS),
            ("dead_letters", ACTOR_DEAD_LETTERS),
        ):
            now = getattr(stats, attr)
            counter.labels(label).inc(now - getattr(pushed, attr))
            setattr(pushed, attr, now)
        slots = list(stats.log2_slots)
        nanos = stats.nanos
        delta = [now - before for now, before in zip(slots, pushed.slots, strict=True)]
        child = ACTOR_PROCESSING.labels(label)
        if any(delta):
            _histogram_add(child, _stats.fold_log2(delta), (nanos - pushed.nanos) / 1e9)
            pushed.slots = slots
            pushed.nanos = nanos
        ACTOR_MAILBOX.labels(label).set(stats.mailbox_depth())


def _flush_resilience() -> None:
    for stream_key, stats in list(_stats.streams.items()):
        items, dropped = _pushed_streams.get(stream_key, (0, 0))
        STREAM_ITEMS.labels(*stream_key).inc(stats.items - items)
        STREAM_DROPPED.labels(*stream_key).inc(stats.dropped - dropped)
        _pushed_streams[stream_key] = (stats.items, stats.dropped)
    for name, code in list(_stats.circuit_states.items()):
        CIRCUIT_STATE.labels(name).set(code)
    for key, count in list(_stats.circuit_transitions.items()):
        CIRCUIT_TRANSITIONS.labels(*key).inc(count - _pushed_transitions.get(key, 0))
        _pushed_transitions[key] = count
    for name, count in list(_stats.bulkhead_rejections.items()):
        BULKHEAD_REJECTIONS.labels(name).inc(count - _pushed_rejections.get(name, 0))
        _pushed_rejections[name] = count


def _flush_process() -> None:
    with _PROCESS.oneshot():
        cpu = _PROCESS.cpu_times()
        PROCESS_CPU.set(cpu.user + cpu.system)
        PROCESS_MEMORY.set(_PROCESS.memory_info().rss)
        try:
            PROCESS_OPEN_FDS.set(_PROCESS.num_fds())
            PROCESS_OPEN_FILES.set(len(_PROCESS.open_files()))
        except (psutil.Error, AttributeError):  # not on every platform
            pass


def flush() -> None:
    """Push the counts gathered since the last flush into the Prometheus collectors."""
    with _flush_lock:
        _flush_actors()
        _flush_resilience()
        _flush_process()
        if _native_counters is not None:
            _native_counters.push()


def exposition(accept: str | None = None) -> tuple[bytes, str]:
    """``(body, content_type)`` for a ``/metrics`` response, multiprocess-aware.

    ``accept``: the request's Accept header (OpenMetrics is chosen when the scraper asks for it).
    Single process: the default ``REGISTRY`` (nexpo's metrics and the application's).
    Multiprocess mode: every worker's metrics (nexpo's and the application's), aggregated from
    ``PROMETHEUS_MULTIPROC_DIR``, plus this process's native counters."""
    flush()
    if multiprocess_mode():
        prune_dead_processes()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        if _native_counters is None:  # the directory was set after import: this process's counts
            registry.register(NativeCollector())
    else:
        registry = REGISTRY
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def mark_process_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (call from the process manager's child-exit hook).

    Its counters stay: the sums over workers must never go down."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def prune_dead_processes() -> list[int]:
    """Drop the live gauges of every pid in ``PROMETHEUS_MULTIPROC_DIR`` that no longer exists
    (a worker killed with SIGKILL never runs its exit hook); returns those pids."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return []
    dead: set[int] = set()
    for path in Path(directory).glob("gauge_live*_*.db"):
        digits = path.stem.rpartition("_")[2]
        if digits.isdigit() and 0 < int(digits) != os.getpid() and not _pid_exists(int(digits)):
            dead.add(int(digits))
    for pid in sorted(dead):
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
    return sorted(dead)

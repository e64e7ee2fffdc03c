"""nexpo.metrics: values after a scripted scenario, native and process collectors, exposition,
prometheus-client multiprocess mode."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from nexpo import _stats, metrics
from nexpo.actors import Actor, ActorSystem
from nexpo.errors import BulkheadFull
from nexpo.streams import DROP_NEWEST, Stream
from nexpo.supervision import Bulkhead, CircuitBreaker


def _value(name: str, **labels: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, labels)


class ScriptedActor(Actor):
    def __init__(self) -> None:
        self.total = 0

    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise RuntimeError("scripted failure")
        if message == "get":
            return self.total
        if isinstance(message, asyncio.Event):
            await message.wait()
            return None
        self.total += message
        return None


async def test_actor_metrics_after_a_scripted_scenario() -> None:
    label = {"actor_class": "ScriptedActor"}
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(ScriptedActor)
        for i in range(5):
            ref.tell(i)
        ref.tell("boom")  # failure 1, restart 1
        assert await ref.ask("get") == 0  # the restarted instance has no snapshot: fresh state
        with pytest.raises(RuntimeError):
            await ref.ask("boom")  # failure 2, the asker gets it, no restart
        gate = asyncio.Event()
        ref.tell(gate)
        for i in range(3):
            ref.tell(i)
        await asyncio.sleep(0)
        metrics.flush()
        assert _value("nexpo_actor_mailbox_depth", **label) == 3
        gate.set()
        await system.stop(ref, drain=True)  # the 3 queued tells are processed first
        ref.tell(1)
        ref.tell(2)  # 2 dead letters
    metrics.flush()
    metrics.flush()  # idempotent: nothing new, nothing added
    processed = 5 + 1 + 1 + 3  # tells, the "get" ask, the gate, the tells after it
    assert _value("nexpo_actor_messages_processed_total", **label) == processed
    assert _value("nexpo_actor_failures_total", **label) == 2
    assert _value("nexpo_actor_restarts_total", **label) == 1
    assert _value("nexpo_actor_dead_letters_total", **label) == 2
    assert _value("nexpo_actor_mailbox_depth", **label) == 0
    assert _value("nexpo_actor_processing_seconds_count", **label) == processed
    assert _value("nexpo_actor_processing_seconds_bucket", le="+Inf", **label) == processed
    total = _value("nexpo_actor_processing_seconds_sum", **label)
    assert total is not None and total > 0


async def test_resilience_and_stream_metrics() -> None:
    breaker = CircuitBreaker("metrics-cb", failure_threshold=1)
    breaker.record_failure()
    bulkhead = Bulkhead("metrics-bh", max_concurrent=1)
    async with bulkhead:
        with pytest.raises(BulkheadFull):
            await bulkhead.acquire()
    stream: Stream[int] = Stream(maxsize=2, policy=DROP_NEWEST, name="metrics-stream")
    for i in range(5):
        stream.put_nowait(i)
    metrics.flush()
    assert _value("nexpo_circuit_state", circuit="metrics-cb") == 1
    assert (
        _value("nexpo_circuit_transitions_total", circuit="metrics-cb", from_state="closed", to_state="open")
        == 1
    )
    assert _value("nexpo_bulkhead_rejections_total", bulkhead="metrics-bh") == 1
    assert _value("nexpo_stream_items_total", stream="metrics-stream", policy="drop_newest") == 2
    assert _value("nexpo_stream_dropped_total", stream="metrics-stream", policy="drop_newest") == 3
    breaker.reset()
    metrics.flush()
    assert _value("nexpo_circuit_state", circuit="metrics-cb") == 0


def test_native_and_process_collectors() -> None:
    metrics.flush()
    workers = _value("nexpo_scheduler_workers")
    assert workers is not None and workers >= 1
    assert _value("nexpo_scheduler_tasks_executed_total", worker="0") is not None
    assert _value("nexpo_kernel_calls_total", kernel="matmul") is not None
    assert _value("nexpo_kernel_bytes_total", kernel="sha256") is not None
    for name in (
        "nexpo_process_cpu_seconds",
        "nexpo_process_resident_memory_bytes",
        "nexpo_process_open_fds",
    ):
        value = _value(name)
        assert value is not None and value > 0, name
    assert _value("nexpo_process_open_files") is not None


def test_exposition_negotiates_the_format() -> None:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    assert b"nexpo_process_resident_memory_bytes" in body
    body, content_type = metrics.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


async def test_metric_updates_stay_off_the_hot_path() -> None:
    # Messages are counted in plain ints; Prometheus only sees them at a flush.
    before = _value("nexpo_actor_messages_processed_total", actor_class="ScriptedActor") or 0
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(ScriptedActor)
        for i in range(100):
            ref.tell(i)
        await ref.ask("get")
        assert _value("nexpo_actor_messages_processed_total", actor_class="ScriptedActor") == before
    metrics.flush()
    assert _value("nexpo_actor_messages_processed_total", actor_class="ScriptedActor") == before + 101


_WORKER = textwrap.dedent(
    """
    import asyncio, os, sys
    from nexpo import _stats, crypto, metrics
    from nexpo.actors import Actor, ActorSystem

    class MultiprocessActor(Actor):
        async def receive(self, message):
            return message

    async def main(count):
        async with ActorSystem(metrics_interval=None) as system:
            ref = system.spawn(MultiprocessActor)
            for i in range(count):
                ref.tell(i)
            await ref.ask("done")
        for _ in range(count):
            crypto.sha256(b"x")
        metrics.flush()

    asyncio.run(main(int(sys.argv[1])))
    print(os.getpid())
    """
)

_SCRAPER = textwrap.dedent(
    """
    import sys
    from nexpo import _stats, metrics
    for pid in sys.argv[1:]:
        metrics.mark_process_dead(int(pid))
    body, _ = metrics.exposition()
    sys.stdout.write(body.decode())
    """
)


def _run(code: str, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _sample(body: str, prefix: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith(prefix)]


def test_multiprocess_mode_aggregates_every_worker(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    pids = [_run(_WORKER, str(count), env=env).strip() for count in (10, 20)]
    body = _run(_SCRAPER, env=env)
    # 10 + 1 ask and 20 + 1 ask, summed across both workers
    assert _sample(body, 'nexpo_actor_messages_processed_total{actor_class="MultiprocessActor"}') == [
        'nexpo_actor_messages_processed_total{actor_class="MultiprocessActor"} 32.0'
    ]
    assert _sample(body, 'nexpo_actor_processing_seconds_count{actor_class="MultiprocessActor"}') == [
        'nexpo_actor_processing_seconds_count{actor_class="MultiprocessActor"} 32.0'
    ]
    # the native counters are multiprocess counters too: both workers' calls, summed (not the
    # scraping process's own counts, which made the series jump between scrapes)
    sha_calls = _sample(body, 'nexpo_kernel_calls_total{kernel="sha256"}')
    assert len(sha_calls) == 1 and float(sha_calls[0].rsplit(" ", 1)[1]) >= 30
    # the workers have exited: their live gauges (one series per pid) are pruned at the scrape,
    # without anyone calling mark_process_dead; the scraper's own series remain
    memory = _sample(body, "nexpo_process_resident_memory_bytes{")
    assert len(memory) == 1
    assert not any(f'pid="{pid}"' in line for pid in pids for line in memory)
    assert metrics.prune_dead_processes() == []  # not in multiprocess mode here


def test_histogram_bulk_add_falls_back_to_observe() -> None:
    class OnlyObserve:
        def __init__(self) -> None:
            self.observed: list[float] = []

        def observe(self, value: float) -> None:
            self.observed.append(value)

    child = OnlyObserve()
    counts = [0] * (len(_stats.PROCESSING_BUCKETS) + 1)
    counts[0], counts[-1] = 2, 1
    metrics._histogram_add(child, counts, 1.0)  # type: ignore[arg-type]
    assert len(child.observed) == 3
    assert child.observed[:2] == [_stats.PROCESSING_BUCKETS[0]] * 2
    assert child.observed[2] > _stats.PROCESSING_BUCKETS[-1]


def test_log2_slots_fold_into_the_prometheus_buckets() -> None:
    slots = [0] * _stats.LOG2_SLOTS
    for nanos in (1, 1024, 1025, 2**20, 2**40):
        slots[(nanos - 1).bit_length()] += 1
    folded = _stats.fold_log2(slots)
    bounds = _stats.PROCESSING_BUCKETS
    # 1 ns and 1024 ns are <= 2**10 ns, 1025 ns <= 2**11 ns, 2**20 ns <= its own bound, 2**40 ns: +Inf
    assert folded[0] == 2 and folded[1] == 1
    assert folded[bounds.index(2**20 / 1e9)] == 1
    assert folded[-1] == 1 and sum(folded) == 5


async def test_without_timing_counters_are_kept_and_the_histogram_is_not_fed() -> None:
    class Untimed(Actor):
        async def receive(self, message: Any) -> Any:
            if message == "boom":
                raise ValueError(message)
            return message

    label = {"actor_class": Untimed.__qualname__}
    async with ActorSystem(timing=False, metrics_interval=None) as system:
        ref = system.spawn(Untimed)
        for i in range(10):
            ref.tell(i)
        with pytest.raises(ValueError, match="boom"):
            await ref.ask("boom")
        ref.tell("boom")
        assert await ref.ask("last") == "last"
    metrics.flush()
    assert _value("nexpo_actor_messages_processed_total", **label) == 11
    assert _value("nexpo_actor_failures_total", **label) == 2
    assert _value("nexpo_actor_restarts_total", **label) == 1
    assert not _value("nexpo_actor_processing_seconds_count", **label)

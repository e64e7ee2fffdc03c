"""Actors: nexpo (one asyncio loop) next to pykka (a thread per actor), in the same run.

Goals (issue 6): tell throughput to one actor (200k messages, then one ask to drain) ≥ 5× pykka;
ask round trip over 10k asks p50 ≤ 10 µs, p99 ≤ 25 µs; 10,000 live actors that each handled a
message within 200 MB RSS (measured in a fresh subprocess).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import pykka
import pytest
from modes import sizes
from pytest_benchmark.fixture import BenchmarkFixture

from nexpo.actors import Actor, ActorRef, ActorSystem

TELLS = 200_000
ASKS = 10_000
LIVE_ACTORS = 10_000
ROUNDS = sizes(quick=[3], full=[7])[0]


class NexpoCounter(Actor):
    def __init__(self) -> None:
        self.count = 0

    async def receive(self, message: Any) -> Any:
        if message == "get":
            return self.count
        self.count += message
        return None


class PykkaCounter(pykka.ThreadingActor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        if message == "get":
            return self.count
        self.count += message
        return None


class _NexpoHarness:
    """One event loop and one actor kept across rounds, so a round times only the messages."""

    def __init__(self, timing: bool) -> None:
        self.loop = asyncio.new_event_loop()
        self.system = ActorSystem(timing=timing, metrics_interval=1.0)
        self.ref: ActorRef = self.loop.run_until_complete(self._start())

    async def _start(self) -> ActorRef:
        await self.system.__aenter__()
        return self.system.spawn(NexpoCounter, mailbox=None)

    def tell_burst(self) -> int:
        return self.loop.run_until_complete(self._tell_burst())

    async def _tell_burst(self) -> int:
        tell = self.ref.tell
        for _ in range(TELLS):
            tell(1)
        count: int = await self.ref.ask("get")
        return count

    def ask_burst(self, latencies: list[int]) -> None:
        self.loop.run_until_complete(self._ask_burst(latencies))

    async def _ask_burst(self, latencies: list[int]) -> None:
        ask = self.ref.ask
        clock = time.perf_counter_ns
        for _ in range(ASKS):
            start = clock()
            await ask("get")
            latencies.append(clock() - start)

    def close(self) -> None:
        self.loop.run_until_complete(self.system.shutdown())
        self.loop.close()


class _PykkaHarness:
    def __init__(self) -> None:
        self.ref = PykkaCounter.start()

    def tell_burst(self) -> int:
        tell = self.ref.tell
        for _ in range(TELLS):
            tell(1)
        count: int = self.ref.ask("get")
        return count

    def ask_burst(self, latencies: list[int]) -> None:
        ask = self.ref.ask
        clock = time.perf_counter_ns
        for _ in range(ASKS):
            start = clock()
            ask("get")
            latencies.append(clock() - start)

    def close(self) -> None:
        self.ref.stop()


IMPLEMENTATIONS: dict[str, Callable[[], _NexpoHarness | _PykkaHarness]] = {
    "nexpo (all metrics)": lambda: _NexpoHarness(timing=True),
    "nexpo (metrics, no timing histogram)": lambda: _NexpoHarness(timing=False),
    "pykka": _PykkaHarness,
}


@pytest.fixture(params=list(IMPLEMENTATIONS))
def harness(request: pytest.FixtureRequest) -> Iterator[tuple[str, _NexpoHarness | _PykkaHarness]]:
    made = IMPLEMENTATIONS[request.param]()
    try:
        yield request.param, made
    finally:
        made.close()


def test_tell_throughput(benchmark: BenchmarkFixture, harness: tuple[str, Any]) -> None:
    name, impl = harness
    counts: list[int] = []
    benchmark.group = f"actors: tell {TELLS // 1000}k msgs to one actor + ask to drain"
    benchmark.pedantic(lambda: counts.append(impl.tell_burst()), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    correct = counts == [TELLS * (i + 1) for i in range(len(counts))]
    benchmark.extra_info.update(implementation=name, msgs=TELLS + 1, correct=correct)
    assert correct


def _percentile(ordered: list[int], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def test_ask_round_trip(benchmark: BenchmarkFixture, harness: tuple[str, Any]) -> None:
    name, impl = harness
    latencies: list[int] = []
    benchmark.group = f"actors: ask round trip x{ASKS // 1000}k"
    rounds = ROUNDS if name.startswith("nexpo") else max(2, ROUNDS // 2)
    benchmark.pedantic(impl.ask_burst, args=(latencies,), rounds=rounds, iterations=1, warmup_rounds=1)
    measured = sorted(latencies[ASKS:])  # without the warmup round
    benchmark.extra_info.update(
        implementation=name,
        msgs=ASKS,
        correct=True,
        p50_us=_percentile(measured, 0.50),
        p99_us=_percentile(measured, 0.99),
        max_us=measured[-1] / 1000.0,
    )


_MEASURE = """
import asyncio, gc, json, sys, time
import psutil

def report(before, start, replies, live, count):
    rss = psutil.Process().memory_info().rss
    print(json.dumps({
        "rss_mb": rss / 2**20, "delta_mb": (rss - before) / 2**20,
        "seconds": time.perf_counter() - start,
        "correct": replies == list(range(count)) and live == count,
    }))
"""

_LIVE_SCRIPTS = {
    "nexpo": _MEASURE + textwrap.dedent(
        """
        from nexpo.actors import Actor, ActorSystem

        class Cell(Actor):
            def __init__(self, index):
                self.index = index
                self.seen = 0

            async def receive(self, message):
                self.seen += 1
                return self.index

        async def main(count):
            gc.collect()
            before = psutil.Process().memory_info().rss
            start = time.perf_counter()
            async with ActorSystem() as system:
                refs = [system.spawn(Cell, i, mailbox=16) for i in range(count)]
                for ref in refs:
                    ref.tell("hello")
                replies = await asyncio.gather(*(ref.ask("who") for ref in refs))
                report(before, start, replies, sum(ref.alive for ref in refs), count)

        asyncio.run(main(int(sys.argv[1])))
        """
    ),
    "pykka": _MEASURE + textwrap.dedent(
        """
        import pykka

        class Cell(pykka.ThreadingActor):
            def __init__(self, index):
                super().__init__()
                self.index = index
                self.seen = 0

            def on_receive(self, message):
                self.seen += 1
                return self.index

        count = int(sys.argv[1])
        gc.collect()
        before = psutil.Process().memory_info().rss
        start = time.perf_counter()
        refs = [Cell.start(i) for i in range(count)]
        for ref in refs:
            ref.tell("hello")
        replies = [future.get() for future in [ref.ask("who", block=False) for ref in refs]]
        report(before, start, replies, sum(ref.is_alive() for ref in refs), count)
        pykka.ActorRegistry.stop_all()
        """
    ),
}


def _live_actors(impl: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _LIVE_SCRIPTS[impl], str(LIVE_ACTORS)],
        capture_output=True, text=True, timeout=900, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("impl", list(_LIVE_SCRIPTS))
def test_ten_thousand_live_actors(benchmark: BenchmarkFixture, impl: str) -> None:
    results: list[dict[str, Any]] = []
    benchmark.group = f"actors: {LIVE_ACTORS // 1000}k live actors, one message each (subprocess)"
    benchmark.pedantic(lambda: results.append(_live_actors(impl)), rounds=1, iterations=1)
    last = results[-1]
    benchmark.extra_info.update(
        implementation=impl,
        correct=bool(last["correct"]),
        throughput=LIVE_ACTORS / last["seconds"],
        unit="actors started+messaged/s",
        rss_mb=round(last["rss_mb"], 1),
        rss_delta_mb=round(last["delta_mb"], 1),
        within_200mb=last["rss_mb"] <= 200,
    )
    assert last["correct"]

"""Channel benchmarks: nexpo vs the standard peers, same run, same message stream.

Every case moves N messages of 64 bytes from a producer (thread, or process) to a consumer and
times the whole transfer (wall clock, the consumer's view). ``extra_info`` holds ``messages``
and ``message_bytes``, so msgs/s = messages / mean; ``correct`` says every message arrived in
order. N defaults to the issue's 1M for thread cases (fewer for the slow peers) and is scaled by
``NEXPO_BENCH_SCALE`` (e.g. 0.1 for a quick look).

    .venv/bin/pytest benchmarks/test_channels.py --benchmark-enable --benchmark-only

The Nim-level numbers (no Python in the loop) come from ``benchmarks/nim/bench_channels.nim``;
``test_nim_channels`` runs it and stores its JSON lines in ``extra_info``.
"""

from __future__ import annotations

import asyncio
import collections
import multiprocessing as mp
import os
import queue
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import janus
import pytest
from faster_fifo import Queue as FasterFifo

from nexpo import Channel, ChannelClosed

sys.path.insert(0, str(Path(__file__).parent / "nim"))
import run as nim_bench

# `nexpo bench --quick` (NEXPO_BENCH_MODE=quick) moves a tenth of the messages.
_DEFAULT_SCALE = "0.1" if os.environ.get("NEXPO_BENCH_MODE", "full") == "quick" else "1"
SCALE = float(os.environ.get("NEXPO_BENCH_SCALE", _DEFAULT_SCALE))
MSG = 64
BATCH = 256
# Two Python threads take turns holding the GIL; each hand-off costs tens of microseconds on a
# VM and varies from one to the next. A round is milliseconds: take more of them.
THREAD_ROUNDS = 7
FORK = mp.get_context("fork")


def _n(base: int) -> int:
    return max(BATCH * 4, int(base * SCALE) // BATCH * BATCH)


def _payloads(n: int) -> list[bytes]:
    return [i.to_bytes(8, "little") * (MSG // 8) for i in range(n)]


def _in_order(got: list[bytes], n: int) -> bool:
    return len(got) == n and all(int.from_bytes(m[:8], "little") == i for i, m in enumerate(got))


def _info(benchmark: Any, group: str, n: int) -> None:
    benchmark.group = f"channels: {group}"
    benchmark.extra_info["messages"] = n
    benchmark.extra_info["message_bytes"] = MSG


def _thread_run(produce: Callable[[], None], consume: Callable[[], list[bytes]]) -> list[bytes]:
    t = threading.Thread(target=produce)
    t.start()
    got = consume()
    t.join()
    return got


# --- thread -> thread, one message per call ------------------------------------------------

PER_ITEM = ["nexpo", "nexpo-copied", "queue.Queue", "queue.SimpleQueue"]
# Two threads share the GIL: a bounded channel makes the sender give it up each time the ring is
# full, so with room for 1024 messages the threads hand it over every 1024 messages (tens of
# microseconds each on this VM), while an unbounded SimpleQueue switches every 5 ms
# (sys.getswitchinterval). The second group gives the channel room for 65536 messages: hand-offs
# as rare as SimpleQueue's, so what is left is the cost of a message.
ROOMY = 65536


def _channel(capacity: int, impl: str) -> Channel:
    """An SPSC channel; "nexpo-copied" copies bytes messages instead of lending them (the
    measurement behind lending, nexpo/_channel/lend.c)."""
    if impl != "nexpo-copied":
        return Channel(capacity, mode="spsc")
    from nexpo._native import ffi, lib

    out = ffi.new("nexpo_channel **")
    assert lib.nexpo_channel_new(0, capacity, 16 << 20, out) == lib.NEXPO_OK
    ch = Channel.__new__(Channel)
    ch._bind(int(ffi.cast("uintptr_t", out[0])), False)
    return ch


def _per_item(benchmark: Any, impl: str, capacity: int, group: str) -> None:
    n = _n(1_000_000 if impl != "queue.Queue" else 200_000)
    msgs = _payloads(n)
    _info(benchmark, group, n)

    def fresh() -> tuple[tuple[Any], dict[str, Any]]:
        # A new channel or queue per round, made outside the timing: what is measured is the
        # cost of a message (a 65536-message ring is 2 MiB of page faults when it is made).
        if impl.startswith("nexpo"):
            return (_channel(capacity, impl),), {}
        return (queue.Queue(capacity) if impl == "queue.Queue" else queue.SimpleQueue(),), {}

    def transfer(endpoint: Any) -> list[bytes]:
        if impl.startswith("nexpo"):
            send, recv = endpoint.send, endpoint.recv
        else:
            send, recv = endpoint.put, endpoint.get

        def produce() -> None:
            for m in msgs:
                send(m)

        def consume() -> list[bytes]:
            return [recv() for _ in range(n)]

        return _thread_run(produce, consume)

    got = benchmark.pedantic(transfer, setup=fresh, rounds=THREAD_ROUNDS, iterations=1)
    benchmark.extra_info["correct"] = _in_order(got, n)


@pytest.mark.parametrize("impl", PER_ITEM)
def test_thread_per_item(benchmark: Any, impl: str) -> None:
    _per_item(benchmark, impl, 1024, f"thread->thread per item {MSG}B")


@pytest.mark.parametrize("impl", ["nexpo", "queue.SimpleQueue"])
def test_thread_per_item_roomy(benchmark: Any, impl: str) -> None:
    _per_item(benchmark, impl, ROOMY, f"thread->thread per item {MSG}B, channel room {ROOMY}")


# --- thread -> thread, batches -------------------------------------------------------------


@pytest.mark.parametrize("impl", ["nexpo", "nexpo-copied", "deque+Condition"])
def test_thread_batched(benchmark: Any, impl: str) -> None:
    n = _n(1_000_000)
    msgs = _payloads(n)
    batches = [msgs[i : i + BATCH] for i in range(0, n, BATCH)]
    _info(benchmark, f"thread->thread batches of {BATCH} {MSG}B", n)
    benchmark.extra_info["batch"] = BATCH

    def transfer() -> list[bytes]:
        if impl.startswith("nexpo"):
            ch = _channel(4096, impl)

            def produce() -> None:
                for b in batches:
                    ch.send_many(b)

            def consume() -> list[bytes]:
                out: list[bytes] = []
                while len(out) < n:
                    out += ch.recv_many(BATCH)
                return out
        else:
            dq: collections.deque[bytes] = collections.deque()
            cond = threading.Condition()
            limit = 4096

            def produce() -> None:
                for b in batches:
                    with cond:
                        while len(dq) > limit - BATCH:
                            cond.wait()
                        dq.extend(b)
                        cond.notify_all()

            def consume() -> list[bytes]:
                out: list[bytes] = []
                while len(out) < n:
                    with cond:
                        while not dq:
                            cond.wait()
                        k = min(BATCH, len(dq))
                        out += [dq.popleft() for _ in range(k)]
                        cond.notify_all()
                return out

        return _thread_run(produce, consume)

    got = benchmark.pedantic(transfer, rounds=THREAD_ROUNDS, iterations=1)
    benchmark.extra_info["correct"] = _in_order(got, n)


# --- thread -> asyncio ---------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["nexpo", "asyncio.Queue+call_soon_threadsafe", "janus"])
def test_asyncio_bridge(benchmark: Any, impl: str) -> None:
    n = _n(200_000)
    msgs = _payloads(n)
    _info(benchmark, f"thread->asyncio per item {MSG}B", n)

    async def nexpo_run() -> list[bytes]:
        ch = Channel(1024, mode="spsc")

        def produce() -> None:
            for m in msgs:
                ch.send(m)

        t = threading.Thread(target=produce)
        t.start()
        out = [await ch.arecv() for _ in range(n)]
        await asyncio.to_thread(t.join)
        return out

    async def asyncio_queue_run() -> list[bytes]:
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[bytes] = asyncio.Queue()

        def produce() -> None:
            put = q.put_nowait
            call = loop.call_soon_threadsafe
            for m in msgs:
                call(put, m)

        t = threading.Thread(target=produce)
        t.start()
        out = [await q.get() for _ in range(n)]
        await asyncio.to_thread(t.join)
        return out

    async def janus_run() -> list[bytes]:
        q: janus.Queue[bytes] = janus.Queue(1024)

        def produce() -> None:
            put = q.sync_q.put
            for m in msgs:
                put(m)

        t = threading.Thread(target=produce)
        t.start()
        get = q.async_q.get
        out = [await get() for _ in range(n)]
        await asyncio.to_thread(t.join)
        q.close()
        await q.wait_closed()
        return out

    runner = {"nexpo": nexpo_run, "janus": janus_run}.get(impl, asyncio_queue_run)
    got = benchmark.pedantic(lambda: asyncio.run(runner()), rounds=3, iterations=1)
    benchmark.extra_info["correct"] = _in_order(got, n)


# --- process -> process --------------------------------------------------------------------


def _produce(send_one: Callable[[bytes], Any], send_batch: Callable[[list[bytes]], Any], n: int,
             batch: int, go: Any) -> None:
    """A producer process's timed part: n messages, one per call or ``batch`` per call.
    ``go`` is (ready, start): the messages are built before the clock starts."""
    msgs = _payloads(n)
    ready, start = go
    ready.set()
    start.wait()
    if batch == 1:
        for m in msgs:
            send_one(m)
    else:
        for i in range(0, n, batch):
            send_batch(msgs[i : i + batch])


def _nexpo_producer(name: str, n: int, batch: int, go: Any) -> None:
    ch = Channel.open_shared(name)
    _produce(ch.send, ch.send_many, n, batch, go)


def _mpq_producer(q: Any, n: int, batch: int, go: Any) -> None:
    _produce(q.put, q.put, n, batch, go)


def _ff_producer(q: Any, n: int, batch: int, go: Any) -> None:
    _produce(lambda m: q.put(m, timeout=60), lambda b: q.put_many(b, timeout=60), n, batch, go)


class _ProcessCase:
    """A producer process started (and parked on an event) before the timed part."""

    def __init__(self, impl: str, n: int, batch: int) -> None:
        self.impl, self.n, self.batch = impl, n, batch
        self.ready, self.go = FORK.Event(), FORK.Event()
        self.name = f"nexpo-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        if impl == "nexpo":
            self.ch = Channel.create_shared(self.name, 4096, mode="spsc", max_message_size=MSG)
            target, arg = _nexpo_producer, self.name
        elif impl == "multiprocessing.Queue":
            self.q: Any = FORK.Queue()
            target, arg = _mpq_producer, self.q
        else:
            self.q = FasterFifo(max_size_bytes=64 * 1024 * 1024)
            target, arg = _ff_producer, self.q
        self.proc = FORK.Process(target=target, args=(arg, n, batch, (self.ready, self.go)))
        self.proc.start()
        # Set-up, not timed: the producer has built its messages and waits for go.
        if not self.ready.wait(120):
            raise RuntimeError(f"{impl} producer did not start")

    def receive_all(self) -> list[bytes]:
        self.go.set()
        out: list[bytes] = []
        n, batch = self.n, self.batch
        if self.impl == "nexpo":
            if batch == 1:
                recv = self.ch.recv
                out = [recv() for _ in range(n)]
            else:
                while len(out) < n:
                    out += self.ch.recv_many(batch)
            self.ch.close()
        elif self.impl == "multiprocessing.Queue":
            if batch == 1:
                out = [self.q.get() for _ in range(n)]
            else:
                while len(out) < n:
                    out += self.q.get()
        elif batch == 1:
            out = [self.q.get(timeout=60) for _ in range(n)]
        else:
            while len(out) < n:
                out += self.q.get_many(max_messages_to_get=batch, timeout=60)
        # The clock stops when the consumer has everything (the consumer's view); the
        # producer's exit is joined afterwards, outside the timed part (_join_all).
        return out

    def join(self) -> None:
        self.proc.join(60)


def _receive_last(cases: list[_ProcessCase]) -> list[bytes]:
    return cases[-1].receive_all()


def _join_all(cases: list[_ProcessCase]) -> None:
    for case in cases:
        case.join()


PROCESS_IMPLS = ["nexpo", "multiprocessing.Queue", "faster-fifo"]


@pytest.mark.parametrize("impl", PROCESS_IMPLS)
def test_process_per_item(benchmark: Any, impl: str) -> None:
    n = _n(200_000)
    _info(benchmark, f"process->process per item {MSG}B", n)
    cases: list[_ProcessCase] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        cases.append(_ProcessCase(impl, n, 1))
        return (cases,), {}

    try:
        got = benchmark.pedantic(_receive_last, setup=setup, rounds=3, iterations=1)
    finally:
        _join_all(cases)
    benchmark.extra_info["correct"] = _in_order(got, n)


@pytest.mark.parametrize("impl", PROCESS_IMPLS)
def test_process_batched(benchmark: Any, impl: str) -> None:
    n = _n(1_000_000)
    batch = 1024 if impl == "multiprocessing.Queue" else BATCH
    _info(benchmark, f"process->process batched {MSG}B", n)
    benchmark.extra_info["batch"] = batch
    cases: list[_ProcessCase] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        cases.append(_ProcessCase(impl, n, batch))
        return (cases,), {}

    try:
        got = benchmark.pedantic(_receive_last, setup=setup, rounds=3, iterations=1)
    finally:
        _join_all(cases)
    benchmark.extra_info["correct"] = _in_order(got, n)


# --- Nim level -------------------------------------------------------------------------------


def test_nim_channels(benchmark: Any) -> None:
    """The native bench (no Python in the loop); its rows land in extra_info."""
    n = str(max(1_000_000, int(20_000_000 * SCALE)))
    benchmark.group = "channels: Nim level (see extra_info)"
    rows = benchmark.pedantic(lambda: nim_bench.run_bench("channels", n, "1"), rounds=1, iterations=1)
    benchmark.extra_info["rows"] = rows
    benchmark.extra_info["correct"] = bool(rows)


def test_closed_channel_stops_the_consumer() -> None:
    """Not a benchmark: keeps this module's helpers honest when benchmarks are disabled."""
    ch = Channel(4)
    ch.close()
    with pytest.raises(ChannelClosed):
        ch.recv()
    assert _in_order(_payloads(3), 3)
    assert isinstance(queue.SimpleQueue(), queue.SimpleQueue)

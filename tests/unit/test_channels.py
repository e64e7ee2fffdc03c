"""nexpo.channels: Channel (threads, asyncio) and select."""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

import nexpo
from nexpo import Channel, ChannelClosed, select
from nexpo.channels import aselect

MODES = ["spsc", "mpsc", "spmc", "mpmc"]


def _pack(producer: int, seq: int) -> bytes:
    return struct.pack("<II", producer, seq)


def _run_threads(targets: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def wrap(fn: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                fn()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a channel thread hung"
    if errors:
        raise errors[0]


# --- construction and arguments -----------------------------------------------------------


def test_exported_from_the_package() -> None:
    assert {"Channel", "select"} <= set(nexpo.__all__)
    assert nexpo.Channel is Channel


@pytest.mark.parametrize("mode", MODES)
def test_properties(mode: str) -> None:
    ch = Channel(5, mode=mode, max_message_size=100)  # type: ignore[arg-type]
    assert ch.capacity == 8
    assert ch.mode == mode
    assert ch.max_message_size == 100
    assert not ch.closed
    assert not ch.shared
    assert ch.name is None
    assert len(ch) == 0
    assert mode in repr(ch)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"capacity": 0}, ValueError, "capacity"),
        ({"capacity": 1 << 30}, ValueError, "capacity"),
        ({"capacity": 2.0}, TypeError, "capacity"),
        ({"capacity": 4, "mode": "fifo"}, ValueError, "mode"),
        ({"capacity": 4, "max_message_size": -1}, ValueError, "max_message_size"),
        ({"capacity": 4, "max_message_size": "1"}, TypeError, "max_message_size"),
    ],
)
def test_bad_construction(kwargs: dict[str, object], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        Channel(**kwargs)  # type: ignore[arg-type]


def test_bad_messages_and_timeouts() -> None:
    ch = Channel(4, max_message_size=10)
    with pytest.raises(TypeError, match="bytes-like"):
        ch.send("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes-like"):
        ch.send(12)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_message_size"):
        ch.send(b"x" * 11)
    with pytest.raises(ValueError, match="timeout"):
        ch.recv(timeout=-1)
    with pytest.raises(TypeError, match="timeout"):
        ch.recv(timeout="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"msgs\[1\]"):
        ch.send_many([b"a", "b"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="max_n"):
        ch.recv_many(0)


# --- single thread semantics -------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_fifo_bytes_like_in_bytes_out(mode: str) -> None:
    ch = Channel(8, mode=mode)  # type: ignore[arg-type]
    big = bytes(range(256)) * 400  # beyond the inline slot: travels by reference
    ch.send(b"")
    ch.send(bytearray(b"ba"))
    ch.send(memoryview(b"xmvx")[1:3])
    ch.send(big)
    assert ch.recv() == b""
    assert ch.recv() == b"ba"
    assert ch.recv() == b"mv"
    got = ch.recv()
    assert type(got) is bytes
    assert got == big


def test_try_variants_and_full_channel() -> None:
    ch = Channel(2)
    assert ch.try_recv() is None
    assert ch.try_send(b"1")
    assert ch.try_send(b"2")
    assert not ch.try_send(b"3")
    assert len(ch) == 2
    with pytest.raises(TimeoutError):
        ch.send(b"3", timeout=0.01)
    assert ch.try_recv() == b"1"
    assert ch.recv(timeout=0) == b"2"
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0.05)
    assert time.monotonic() - t0 >= 0.04


def test_close_semantics_iteration_and_context_manager() -> None:
    with Channel(8) as ch:
        ch.send_many([b"a", b"b", b"c"])
    assert ch.closed
    with pytest.raises(ChannelClosed):
        ch.send(b"x")
    with pytest.raises(ChannelClosed):
        ch.try_send(b"x")
    assert list(ch) == [b"a", b"b", b"c"]
    with pytest.raises(ChannelClosed):
        ch.recv()
    with pytest.raises(ChannelClosed):
        ch.try_recv()
    ch.close()  # idempotent


def test_send_many_recv_many_batches() -> None:
    ch = Channel(64, max_message_size=1 << 20)
    msgs = [bytes([i]) * i for i in range(50)]
    assert ch.send_many(msgs) == 50
    got: list[bytes] = []
    while len(got) < 50:
        got += ch.recv_many(7)
    assert got == msgs
    assert ch.send_many([]) == 0
    huge = b"h" * (1 << 20)
    ch.send(huge)
    assert ch.recv_many(10) == [huge]


def test_send_many_partial_on_close_and_timeout() -> None:
    ch = Channel(2)
    assert ch.send_many([b"1", b"2", b"3"], timeout=0.02) == 2
    ch.close()
    with pytest.raises(ChannelClosed):
        ch.send_many([b"x"])


def test_blocking_recv_is_woken_by_another_thread() -> None:
    ch = Channel(4)
    threading.Timer(0.05, ch.send, args=(b"late",)).start()
    assert ch.recv(timeout=5) == b"late"


def test_close_wakes_blocked_receivers_and_senders() -> None:
    empty, full = Channel(2), Channel(2)
    full.send_many([b"1", b"2"])
    outcome: list[str] = []

    def receiver() -> None:
        with pytest.raises(ChannelClosed):
            empty.recv()
        outcome.append("recv")

    def sender() -> None:
        with pytest.raises(ChannelClosed):
            full.send(b"3")
        outcome.append("send")

    def closer() -> None:
        time.sleep(0.05)
        empty.close()
        full.close()

    _run_threads([receiver, sender, closer])
    assert sorted(outcome) == ["recv", "send"]


def test_spsc_rejects_two_concurrent_receivers() -> None:
    ch = Channel(2, mode="spsc")
    errors: list[BaseException] = []

    def blocked() -> None:
        try:
            ch.recv(timeout=0.3)
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.05)
    with pytest.raises(ValueError, match="SPSC"):
        ch.recv(timeout=0.01)
    t.join()
    assert isinstance(errors[0], TimeoutError)


# --- stress -------------------------------------------------------------------------------


def _stress(mode: str, producers: int, consumers: int, per_producer: int, batch: int) -> None:
    ch = Channel(256, mode=mode)  # type: ignore[arg-type]
    seen: list[list[bytes]] = [[] for _ in range(consumers)]

    def producer(p: int) -> Callable[[], None]:
        def run() -> None:
            for start in range(0, per_producer, batch):
                ch.send_many([_pack(p, s) for s in range(start, min(start + batch, per_producer))])

        return run

    def consumer(c: int) -> Callable[[], None]:
        def run() -> None:
            while True:
                try:
                    seen[c] += ch.recv_many(batch)
                except ChannelClosed:
                    return

        return run

    def producers_then_close() -> None:
        _run_threads([producer(p) for p in range(producers)])
        ch.close()

    _run_threads([producers_then_close, *(consumer(c) for c in range(consumers))])
    counts = Counter(m for part in seen for m in part)
    assert len(counts) == producers * per_producer
    assert set(counts.values()) == {1}
    for part in seen:  # per-producer FIFO, as each consumer saw it
        last = [-1] * producers
        for m in part:
            p, s = struct.unpack("<II", m)
            assert s > last[p]
            last[p] = s


@pytest.mark.slow
def test_stress_mpmc_4x4_100k_each() -> None:
    _stress("mpmc", 4, 4, 100_000, 256)


@pytest.mark.parametrize(("mode", "producers", "consumers"), [
    ("spsc", 1, 1), ("mpsc", 3, 1), ("spmc", 1, 3), ("mpmc", 3, 3),
])
def test_stress_each_mode_per_item(mode: str, producers: int, consumers: int) -> None:
    ch = Channel(16, mode=mode)  # type: ignore[arg-type]
    n = 5_000
    got: list[bytes] = []
    lock = threading.Lock()

    def producer(p: int) -> Callable[[], None]:
        return lambda: [ch.send(_pack(p, s)) for s in range(n)] and None

    def consumer() -> None:
        mine = list(ch)
        with lock:
            got.extend(mine)

    def producers_then_close() -> None:
        _run_threads([producer(p) for p in range(producers)])
        ch.close()

    _run_threads([producers_then_close, *([consumer] * consumers)])
    assert sorted(got) == sorted(_pack(p, s) for p in range(producers) for s in range(n))


def _close_race(ch: Channel, delay: float) -> tuple[int, int]:
    sent = [0, 0]
    received = [0, 0]

    def sender(i: int) -> Callable[[], None]:
        def run() -> None:
            while True:
                try:
                    ch.send(b"m", timeout=1)
                except ChannelClosed:
                    return
                sent[i] += 1

        return run

    def receiver(i: int) -> Callable[[], None]:
        def run() -> None:
            for _ in ch:
                received[i] += 1

        return run

    def closer() -> None:
        time.sleep(delay)
        ch.close()

    _run_threads([sender(0), sender(1), receiver(0), receiver(1), closer])
    return sum(sent), sum(received)


def test_close_racing_with_send_and_recv(rng: random.Random) -> None:
    for _ in range(5):
        sent, received = _close_race(Channel(4), rng.uniform(0.001, 0.02))
        assert sent == received


# --- select -------------------------------------------------------------------------------


def test_select_is_fair_and_reports_closure() -> None:
    chans = [Channel(64) for _ in range(3)]
    for i, ch in enumerate(chans):
        ch.send_many([bytes([i])] * 60)
    picked = Counter(chans.index(select(chans)[0]) for _ in range(90))
    assert picked == {0: 30, 1: 30, 2: 30}
    for ch in chans:
        ch.close()
    rest = 0
    while True:
        try:
            select(chans)
        except ChannelClosed:
            break
        rest += 1
    assert rest == 90


def test_select_blocks_until_a_send_and_times_out() -> None:
    a, b = Channel(2), Channel(2)
    with pytest.raises(TimeoutError):
        select([a, b], timeout=0.02)
    threading.Timer(0.05, b.send, args=(b"B",)).start()
    ch, msg = select([a, b], timeout=5)
    assert ch is b
    assert msg == b"B"


def test_select_arguments() -> None:
    with pytest.raises(ValueError, match="empty"):
        select([])
    with pytest.raises(TypeError, match=r"channels\[0\]"):
        select([object()])  # type: ignore[list-item]


# --- asyncio ------------------------------------------------------------------------------


async def test_async_roundtrip_with_a_thread_producer() -> None:
    ch = Channel(8)
    n = 2_000

    def produce() -> None:
        for i in range(n):
            ch.send(i.to_bytes(4, "little"))
        ch.close()

    t = threading.Thread(target=produce)
    t.start()
    got = [int.from_bytes(m, "little") async for m in ch]
    t.join()
    assert got == list(range(n))


async def test_async_send_waits_for_room_from_a_thread_consumer() -> None:
    ch = Channel(2)
    received: list[bytes] = []

    def consume() -> None:
        received.extend(ch)

    t = threading.Thread(target=consume)
    t.start()
    for i in range(500):
        await ch.asend(bytes([i % 256]))
    ch.close()
    await asyncio.to_thread(t.join)
    assert received == [bytes([i % 256]) for i in range(500)]


async def test_async_cancellation_takes_nothing() -> None:
    ch = Channel(4)
    waiter = asyncio.create_task(ch.arecv())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    ch.send(b"kept")
    assert await asyncio.wait_for(ch.arecv(), 5) == b"kept"
    # Cancel a sender waiting for room: its message must not appear later.
    full = Channel(2)
    full.send_many([b"1", b"2"])
    sender = asyncio.create_task(full.asend(b"never"))
    await asyncio.sleep(0.01)
    sender.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sender
    full.close()
    assert list(full) == [b"1", b"2"]


async def test_async_many_cancellations_lose_and_duplicate_nothing(rng: random.Random) -> None:
    ch = Channel(4)
    n = 300
    got: list[bytes] = []

    async def consumer() -> None:
        while True:
            try:
                got.append(await ch.arecv())
            except ChannelClosed:
                return

    def produce() -> None:
        for i in range(n):
            ch.send(i.to_bytes(2, "little"))
            if i % 50 == 0:
                time.sleep(0.002)
        ch.close()

    t = threading.Thread(target=produce)
    t.start()
    while t.is_alive() or len(ch):
        task = asyncio.create_task(consumer())
        await asyncio.sleep(rng.uniform(0, 0.003))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await asyncio.to_thread(t.join)
    await consumer()
    assert sorted(got) == sorted(i.to_bytes(2, "little") for i in range(n))
    assert len(got) == n


async def test_async_close_wakes_waiters() -> None:
    ch = Channel(2)
    waiter = asyncio.create_task(ch.arecv())
    await asyncio.sleep(0.01)
    ch.close()
    with pytest.raises(ChannelClosed):
        await asyncio.wait_for(waiter, 5)


async def test_aselect_fair_blocking_and_timeout() -> None:
    chans = [Channel(32) for _ in range(2)]
    for i, ch in enumerate(chans):
        ch.send_many([bytes([i])] * 20)
    picked = Counter([chans.index((await aselect(chans))[0]) for _ in range(20)])
    assert picked[0] > 0
    assert picked[1] > 0
    for ch in chans:
        while ch.try_recv() is not None:
            pass
    with pytest.raises(TimeoutError):
        await aselect(chans, timeout=0.02)
    threading.Timer(0.03, chans[1].send, args=(b"x",)).start()
    ch, msg = await asyncio.wait_for(aselect(chans), 5)
    assert ch is chans[1]
    assert msg == b"x"
    for c in chans:
        c.close()
    with pytest.raises(ChannelClosed):
        await aselect(chans)

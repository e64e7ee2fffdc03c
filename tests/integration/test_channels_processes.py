"""Shared-memory channels between processes: delivery, cross-process wakeups, crashed peers."""

from __future__ import annotations

import asyncio
import gc
import multiprocessing as mp
import os
import signal
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexpo import Channel, ChannelClosed

CTX = mp.get_context("spawn")


@pytest.fixture
def name() -> Iterator[str]:
    shm = f"nexpo-it-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield shm
    Path("/dev/shm", shm).unlink(missing_ok=True)


def _producer(name: str, n: int, batch: int) -> None:
    ch = Channel.open_shared(name)
    if batch == 1:
        for i in range(n):
            ch.send(struct.pack("<Q", i) * 8, timeout=30)
    else:
        for start in range(0, n, batch):
            ch.send_many([struct.pack("<Q", i) * 8 for i in range(start, min(start + batch, n))], timeout=30)


def _consumer(name: str, n: int, out: mp.Queue[int]) -> None:
    ch = Channel.open_shared(name)
    total = 0
    for _ in range(n):
        total += struct.unpack_from("<Q", ch.recv(timeout=30))[0]
    out.put(total)


def _send_then_die(name: str, n: int) -> None:
    ch = Channel.open_shared(name)
    for i in range(n):
        ch.send(bytes([i]), timeout=30)
    os.kill(os.getpid(), signal.SIGKILL)


def _block_in_recv(name: str) -> None:
    Channel.open_shared(name).recv()


@pytest.mark.parametrize("mode", ["spsc", "mpmc"])
@pytest.mark.parametrize("batch", [1, 64])
def test_process_to_process_exactly_once_in_order(name: str, mode: str, batch: int) -> None:
    n = 20_000
    ch = Channel.create_shared(name, 256, mode=mode, max_message_size=64)  # type: ignore[arg-type]
    proc = CTX.Process(target=_producer, args=(name, n, batch))
    proc.start()
    got = []
    while len(got) < n:
        got += ch.recv_many(256, timeout=30)
    proc.join(30)
    assert proc.exitcode == 0
    assert [struct.unpack_from("<Q", m)[0] for m in got] == list(range(n))
    assert all(len(m) == 64 for m in got)
    ch.close()


def test_cross_process_wakeup_of_a_blocked_receiver(name: str) -> None:
    ch = Channel.create_shared(name, 8, mode="mpmc", max_message_size=16)
    out: mp.Queue[int] = CTX.Queue()
    proc = CTX.Process(target=_consumer, args=(name, 3, out))
    proc.start()
    for i in (5, 6, 7):
        ch.send(struct.pack("<Q", i))
    assert out.get(timeout=30) == 18
    proc.join(30)
    ch.close()


def test_crashed_sender_leaves_what_it_sent_and_never_wedges(name: str) -> None:
    ch = Channel.create_shared(name, 64, mode="mpmc", max_message_size=8)
    proc = CTX.Process(target=_send_then_die, args=(name, 10))
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    assert [ch.recv(timeout=5) for _ in range(10)] == [bytes([i]) for i in range(10)]
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0.05)
    ch.send(b"still")  # the survivor keeps using the ring
    assert ch.recv(timeout=1) == b"still"
    ch.close()


def test_crashed_receiver_does_not_block_the_sender(name: str) -> None:
    ch = Channel.create_shared(name, 2, mode="spsc", max_message_size=8)
    proc = CTX.Process(target=_block_in_recv, args=(name,))
    proc.start()
    proc.kill()
    proc.join(30)
    # The dead receiver held the receive side while blocked (SPSC guard): the ring is intact,
    # sends work until full, then time out instead of hanging.
    ch.send(b"1", timeout=1)
    ch.send(b"2", timeout=1)
    with pytest.raises(TimeoutError):
        ch.send(b"3", timeout=0.05)
    ch.close()


def test_creator_close_unlinks_and_closes_for_everyone(name: str) -> None:
    creator = Channel.create_shared(name, 4, max_message_size=32)
    peer = Channel.open_shared(name)
    assert peer.shared
    assert peer.name == name
    assert Path("/dev/shm", name).exists()
    with pytest.raises(ValueError, match="already exists"):
        Channel.create_shared(name, 4)
    creator.send(b"last words")
    creator.close()
    assert not Path("/dev/shm", name).exists()
    assert peer.closed
    assert peer.recv() == b"last words"
    with pytest.raises(ChannelClosed):
        peer.recv()
    with pytest.raises(ValueError, match="no shared channel"):
        Channel.open_shared(name)


def test_creator_dropped_without_close_still_unlinks(name: str) -> None:
    creator = Channel.create_shared(name, 4, max_message_size=8)
    peer = Channel.open_shared(name)
    creator.send(b"kept")
    del creator
    gc.collect()
    assert not Path("/dev/shm", name).exists()
    assert peer.recv(timeout=1) == b"kept"  # the mapping outlives the name


def test_shared_arguments(name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        Channel.create_shared("a/b", 4)
    with pytest.raises(TypeError, match="name"):
        Channel.create_shared(3, 4)  # type: ignore[arg-type]
    ch = Channel.create_shared(name, 4, max_message_size=8)
    with pytest.raises(ValueError, match="max_message_size"):
        ch.send(b"123456789")
    ch.close()


async def test_async_receive_from_another_process(name: str) -> None:
    ch = Channel.create_shared(name, 16, mode="mpmc", max_message_size=64)
    proc = CTX.Process(target=_producer, args=(name, 200, 1))
    proc.start()
    got = [await asyncio.wait_for(ch.arecv(), 30) for _ in range(200)]
    await asyncio.to_thread(proc.join, 30)
    assert [struct.unpack_from("<Q", m)[0] for m in got] == list(range(200))
    ch.close()


async def test_cancelled_async_wait_on_a_shared_spsc_leaves_the_side_free(name: str) -> None:
    """asyncio waits on a shared ring in a helper thread; cancelling it must not leave that
    thread holding the SPSC receiving side (the next receive would be refused as a second
    receiver)."""
    ch = Channel.create_shared(name, 4, mode="spsc", max_message_size=64)
    task = asyncio.ensure_future(ch.arecv())
    await asyncio.sleep(0.05)  # the helper thread is waiting now
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The helper thread may still be waiting out its slice: the side must be free meanwhile.
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0.05)  # not ValueError("... two receivers at once ...")
    ch.send(b"after")
    assert ch.recv(timeout=1) == b"after"
    ch.close()

"""The serialised path of in-process SPSC channels (runtime/wake.nim): the Channel's own sends and
receives hold the GIL and skip the side guards; a cffi receive or send (select, asyncio) turns
that off for good while the other side may be mid-operation. Nothing may be lost, duplicated or
reordered across the switch."""

from __future__ import annotations

import asyncio
import random
import struct
import threading

import pytest

from nexpo import Channel, select


def _producer(ch: Channel, n: int) -> threading.Thread:
    def run() -> None:
        for i in range(n):
            ch.send(struct.pack("<I", i))

    t = threading.Thread(target=run)
    t.start()
    return t


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_select_mid_stream_loses_and_duplicates_nothing(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(40):  # the switch happens once per channel: many channels, many races
        ch = Channel(rng.choice([4, 64]), mode="spsc")
        n = rng.randrange(20, 120)
        switch_at = rng.randrange(n)
        t = _producer(ch, n)
        got = []
        for i in range(n):
            if i == switch_at or (i > switch_at and rng.random() < 0.3):
                _, msg = select([ch], timeout=5)
            else:
                msg = ch.recv(timeout=5)
            got.append(struct.unpack("<I", msg)[0])
        t.join()
        assert got == list(range(n))
        assert ch.try_recv() is None


def test_an_async_sender_mid_stream_loses_and_duplicates_nothing() -> None:
    n = 2000
    ch = Channel(4, mode="spsc")
    got: list[int] = []

    def consume() -> None:
        for _ in range(n):
            got.append(struct.unpack("<I", ch.recv(timeout=5))[0])

    async def produce() -> None:
        for i in range(n):
            msg = struct.pack("<I", i)
            if i < 200:
                await asyncio.to_thread(ch.send, msg)  # the Channel's own send (GIL held)
            else:
                await ch.asend(msg)  # cffi when full: leaves the serialised path

    t = threading.Thread(target=consume)
    t.start()
    asyncio.run(produce())
    t.join()
    assert got == list(range(n))


def test_batches_and_single_messages_interleave_on_the_serialised_path() -> None:
    ch = Channel(16, mode="spsc")
    n = 10000

    def produce() -> None:
        i = 0
        while i < n:
            k = min(n - i, 1 + i % 7)
            if k == 1:
                ch.send(struct.pack("<I", i))
            else:
                ch.send_many([struct.pack("<I", j) for j in range(i, i + k)])
            i += k

    t = threading.Thread(target=produce)
    t.start()
    got: list[int] = []
    while len(got) < n:
        if len(got) % 3:
            got.extend(struct.unpack("<I", m)[0] for m in ch.recv_many(5, timeout=5))
        else:
            got.append(struct.unpack("<I", ch.recv(timeout=5))[0])
    t.join()
    assert got == list(range(n))

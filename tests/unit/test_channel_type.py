"""nexpo/_channel/: the C type behind nexpo.Channel (every per-message method, and its waits).

Every argument shape is parsed in C; the hot shape (``send(msg)``, ``recv()``) and the others
must give the same results and the same errors.
"""

from __future__ import annotations

import array
import asyncio
import gc
import os
import signal
import sys
import threading
import time

import pytest

from nexpo import Channel, ChannelClosed, _channel, select

SCRATCH = _channel.SCRATCH


def test_loaded_from_the_core_library_and_sharing_its_runtime() -> None:
    assert _channel.__file__ == sys.modules["nexpo._core"].__file__
    assert isinstance(Channel(2), _channel.Channel)
    ch = Channel(4)
    ch.send(b"via the C type")
    assert len(ch) == 1
    _, got = select([ch])  # a cffi receive: one Nim runtime, one channel
    assert got == b"via the C type"


def test_non_blocking_shapes_report_without_waiting() -> None:
    ch = Channel(2, mode="spsc")
    assert ch.try_recv() is None
    with pytest.raises(TimeoutError):
        ch.recv_many(4, timeout=0)
    assert ch.send_many([b"a", b"b", b"c"], timeout=0) == 2
    assert not ch.try_send(b"d")
    assert ch.recv_many(8) == [b"a", b"b"]
    with pytest.raises(TypeError, match=r"msgs\[1\]"):
        ch.send_many([b"ok", 3])  # type: ignore[list-item]
    assert len(ch) == 0, "a bad batch sends nothing"
    ch.close()
    with pytest.raises(ChannelClosed):
        ch.try_send(b"x")
    with pytest.raises(ChannelClosed):
        ch.try_recv()
    with pytest.raises(TypeError, match="not iterable"):
        ch.send_many(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ch.send()  # type: ignore[call-arg]


def test_the_c_type_alone_is_a_channel() -> None:
    """nexpo.Channel only adds asyncio: the base type works on its own."""
    ch = _channel.Channel(4, mode="mpsc", max_message_size=64)
    ch.send(b"x")
    assert ch.recv() == b"x"
    assert (ch.capacity, ch.mode, ch.max_message_size, ch.name) == (4, "mpsc", 64, None)
    with ch:
        ch.send(b"last")
    assert ch.closed
    assert list(ch) == [b"last"]


def test_a_blocked_wait_runs_signal_handlers() -> None:
    """Ctrl-C reaches a recv blocked with no timeout (the wait is cut into slices)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread")
    ch = Channel(2)
    previous = signal.signal(signal.SIGALRM, signal.default_int_handler)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            ch.recv()
        assert time.monotonic() - started < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_blocked_wait_releases_the_gil() -> None:
    ch = Channel(2)
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    t = threading.Thread(target=count)
    t.start()
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0.3)
    stop.set()
    t.join(10)
    assert ticks > 1000


GIL_FREE_COPY = _channel.GIL_FREE_COPY  # copies this long are made with the GIL released


@pytest.mark.parametrize(
    "size", [0, 1, 64, SCRATCH - 1, SCRATCH, SCRATCH + 1, 3 * SCRATCH, GIL_FREE_COPY, 1 << 20]
)
def test_sizes_around_the_scratch_buffer(size: int) -> None:
    """Up to SCRATCH bytes come through the stack buffer, longer ones through a heap block;
    copies from GIL_FREE_COPY bytes on release the GIL."""
    ch = Channel(8, max_message_size=1 << 21)
    msg = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    ch.send(msg)
    assert ch.recv() == msg
    assert ch.try_send(msg)
    assert ch.try_recv() == msg
    assert ch.send_many([msg, b"tail", msg]) == 3
    assert ch.recv_many(8) == [msg, b"tail", msg]


def test_call_shapes_reach_the_same_behaviour() -> None:
    ch = Channel(4)
    ch.send(b"a")
    ch.send(b"b", None)
    ch.send(b"c", timeout=None)
    ch.send(b"d", timeout=1.0)  # parsed by the cold path
    assert [ch.recv(), ch.recv(None), ch.recv(timeout=None), ch.recv(timeout=1)] == [b"a", b"b", b"c", b"d"]
    assert ch.send_many((b"t1", b"t2")) == 2
    assert ch.send_many(m for m in [b"g1"]) == 1  # not a list or tuple: a tuple of it
    assert ch.recv_many(max_n=8) == [b"t1", b"t2", b"g1"]
    with pytest.raises(TypeError):
        ch.send()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ch.send(b"x", None, None)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ch.send(b"x", tmeout=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ch.try_send(b"x", 1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ch.try_recv(1)  # type: ignore[call-arg]


def test_bytes_like_inputs_and_precise_type_errors() -> None:
    ch = Channel(8)
    ch.send(bytearray(b"ba"))
    ch.send(memoryview(b"xmvx")[1:3])
    ch.send(array.array("B", [1, 2]))
    assert ch.send_many([bytearray(b"1"), memoryview(b"2")]) == 2
    assert ch.recv_many(8) == [b"ba", b"mv", b"\x01\x02", b"1", b"2"]
    with pytest.raises(TypeError, match=r"msg must be a bytes-like object, not str \(encode it first\)"):
        ch.send("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="msg must be a bytes-like object, not int"):
        ch.try_send(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"msgs\[1\] must be a bytes-like object, not NoneType"):
        ch.send_many([b"ok", None])  # type: ignore[list-item]
    assert len(ch) == 0, "a bad batch sends nothing"


def test_errors_are_precise() -> None:
    ch = Channel(2, max_message_size=8)
    with pytest.raises(ValueError, match="max_message_size"):
        ch.send(b"123456789")
    with pytest.raises(ValueError, match="max_message_size"):
        ch.send_many([b"1", b"123456789"])
    assert ch.recv() == b"1", "messages before the bad one went"
    with pytest.raises(TimeoutError):
        ch.recv(timeout=0)
    with pytest.raises(ValueError, match="timeout"):
        ch.send(b"x", timeout=-1)
    with pytest.raises(ValueError, match="max_n"):
        ch.recv_many(0)
    with pytest.raises(TypeError, match="max_n"):
        ch.recv_many(True)
    ch.close()
    with pytest.raises(ChannelClosed):
        ch.send(b"x")
    with pytest.raises(ChannelClosed):
        ch.try_send(b"x")
    with pytest.raises(ChannelClosed):
        ch.recv()
    with pytest.raises(ChannelClosed):
        ch.try_recv()
    with pytest.raises(ChannelClosed):
        ch.send_many([b"x"])
    with pytest.raises(ChannelClosed):
        ch.recv_many(4)


def test_send_many_waits_when_the_ring_fills() -> None:
    ch = Channel(4, mode="spsc")
    msgs = [i.to_bytes(4, "little") for i in range(1000)]
    got: list[bytes] = []

    def consume() -> None:
        while len(got) < len(msgs):
            got.extend(ch.recv_many(3))

    t = threading.Thread(target=consume)
    t.start()
    assert ch.send_many(msgs) == len(msgs)
    t.join(10)
    assert got == msgs


def test_send_many_returns_the_count_when_closed_midway() -> None:
    ch = Channel(2)

    def close_soon() -> None:
        while len(ch) < 2:
            pass
        ch.close()

    t = threading.Thread(target=close_soon)
    t.start()
    assert ch.send_many([b"1", b"2", b"3", b"4"]) == 2
    t.join(10)
    assert ch.recv_many(8) == [b"1", b"2"]


def test_the_per_message_methods_are_c_methods() -> None:
    for name in ("send", "recv", "try_send", "try_recv", "send_many", "recv_many"):
        method = getattr(Channel, name)
        assert type(method).__name__ == "method_descriptor", name
        assert method.__doc__, name
    assert str(__import__("inspect").signature(Channel.send)) == "(self, msg, /, timeout=None)"


# --- lending: bytes travel by reference within one process --------------------------------


def _payload(i: int, size: int = 64) -> bytes:
    return i.to_bytes(8, "little") * (size // 8)


def _settled_refcount(obj: object) -> int:
    _channel.release_pending()
    return sys.getrefcount(obj) - 1  # not counting the argument


@pytest.mark.parametrize("mode", ["spsc", "mpsc", "spmc", "mpmc"])
def test_bytes_are_lent_and_come_back_as_the_same_object(mode: str) -> None:
    ch = Channel(8, mode=mode)  # type: ignore[arg-type]
    small, big = _payload(1), _payload(2, 1 << 20)
    ch.send(small)
    ch.send(big)
    assert ch.recv() is small
    assert ch.recv() is big
    assert ch.try_send(small)
    assert ch.try_recv() is small
    batch = [_payload(i) for i in range(5)]
    assert ch.send_many(batch) == 5
    got = ch.recv_many(8)
    assert all(a is b for a, b in zip(got, batch, strict=True))


def test_other_bytes_like_messages_are_copied() -> None:
    class Sub(bytes):
        pass

    ch = Channel(8)
    buf = bytearray(b"mutable")
    sub = Sub(b"subclass")
    assert ch.send_many([buf, memoryview(b"view"), sub, b"lent"]) == 4
    buf[:] = b"changed"  # the channel holds a copy
    got = ch.recv_many(4)
    assert got == [b"mutable", b"view", b"subclass", b"lent"]
    assert all(type(m) is bytes for m in got)
    assert got[2] is not sub


def test_shared_and_tiny_slot_channels_copy() -> None:
    msg = _payload(7, 8)
    tiny = Channel(4, max_message_size=8)  # slots under 16 bytes hold no reference
    tiny.send(msg)
    tiny.send_many([msg, msg])
    assert tiny.recv_many(3) == [msg] * 3
    assert not tiny._lend, "the channel copies from then on"
    name = f"nexpo-test-lend-{os.getpid()}"
    shared = Channel.create_shared(name, 4)
    try:
        big = _payload(9, 1024)
        shared.send(big)
        got = shared.recv()
        assert got == big and got is not big
    finally:
        shared.close()


def test_the_ring_holds_one_reference_per_lent_message() -> None:
    msg = _payload(3)
    base = _settled_refcount(msg)
    ch = Channel(8)
    ch.send(msg)
    ch.send_many([msg, msg])
    assert _settled_refcount(msg) == base + 3
    assert ch.recv() is msg
    assert _settled_refcount(msg) == base + 2
    del ch  # two messages left in the ring: dropped with it
    gc.collect()
    assert _settled_refcount(msg) == base


def test_receivers_that_copy_give_lent_messages_back() -> None:
    """select, asyncio waits and every cffi receive copy the bytes out (any thread, no GIL)
    and park the reference; the next call of the C type drops it."""
    msg = _payload(4)
    base = _settled_refcount(msg)
    ch = Channel(8)
    ch.send_many([msg, msg])
    _, first = select([ch])
    assert first == msg and first is not msg
    assert _channel.pending_releases() == 1
    assert ch.recv() is msg  # a call of the C type: settles first
    assert _channel.pending_releases() == 0
    assert _settled_refcount(msg) == base

    async def woken_later() -> bytes:
        threading.Timer(0.05, ch.send, (msg,)).start()
        return await ch.arecv()  # empty: waits on the event fd, then receives by copy

    got = asyncio.run(woken_later())
    assert got == msg and got is not msg
    assert _settled_refcount(msg) == base


def test_a_full_ring_rejects_a_batch_without_leaking_references() -> None:
    msgs = [_payload(i) for i in range(6)]
    bases = [_settled_refcount(m) for m in msgs]
    ch = Channel(4, mode="spsc")
    assert ch.send_many(msgs, timeout=0) == 4
    assert [_settled_refcount(m) for m in msgs] == [b + 1 for b in bases[:4]] + bases[4:]
    with pytest.raises(TimeoutError):
        ch.send(msgs[5], timeout=0)
    assert _settled_refcount(msgs[5]) == bases[5]
    assert ch.recv_many(8) == msgs[:4]
    assert [_settled_refcount(m) for m in msgs] == bases


@pytest.mark.parametrize("mode", ["spsc", "mpmc"])
def test_lent_messages_between_threads_with_every_receive(mode: str) -> None:
    """Producer lends; the consumer mixes fast receives (same objects back) with receives
    that copy (select, timed waits): each message arrives once, in order, and no reference
    is left behind."""
    n = 20_000
    msgs = [_payload(i) for i in range(n)]
    bases = [_settled_refcount(m) for m in msgs[:50]]
    ch = Channel(64, mode=mode)  # type: ignore[arg-type]

    def produce() -> None:
        i = 0
        while i < n:
            if i % 3:
                ch.send(msgs[i])
                i += 1
            else:
                i += ch.send_many(msgs[i : i + 17])
        ch.close()

    t = threading.Thread(target=produce)
    t.start()
    got: list[bytes] = []
    k = 0
    while True:
        k += 1
        try:
            if k % 4 == 0:
                got.append(select([ch], timeout=10)[1])
            elif k % 4 == 1:
                got.extend(ch.recv_many(32, timeout=10))
            else:
                got.append(ch.recv(timeout=10))
        except ChannelClosed:
            break
    t.join(10)
    assert got == msgs
    del got
    _channel.release_pending()
    assert [_settled_refcount(m) for m in msgs[:50]] == bases

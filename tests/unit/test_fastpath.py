"""nexpo/_fastpath.c: the GIL-holding channel calls behind Channel's per-message methods.

Every argument shape goes either through the C attempt or, unchanged, to the Python method it
falls back to; both must give the same results and the same errors as before.
"""

from __future__ import annotations

import array
import sys
import threading

import pytest

from nexpo import Channel, ChannelClosed
from nexpo._native import fastpath, lib

SCRATCH = fastpath.SCRATCH


def test_loaded_from_the_core_library_and_sharing_its_runtime() -> None:
    assert fastpath.__file__ == sys.modules["nexpo._core"].__file__
    assert isinstance(Channel(2), fastpath.ChannelCore)
    ch = Channel(4)
    assert fastpath.send(ch._addr, b"via fastpath") == lib.NEXPO_OK
    assert len(ch) == 1  # seen by the cffi module: one Nim runtime, one channel
    assert ch.recv() == b"via fastpath"


def test_module_functions_report_statuses() -> None:
    ch = Channel(2, mode="spsc")
    assert fastpath.recv(ch._addr) == lib.NEXPO_EAGAIN
    assert fastpath.recv_many(ch._addr, 4) == lib.NEXPO_EAGAIN
    assert fastpath.send_many(ch._addr, [b"a", b"b", b"c"]) == (2, lib.NEXPO_EAGAIN)
    assert fastpath.send(ch._addr, b"d") == lib.NEXPO_EAGAIN
    assert fastpath.recv_many(ch._addr, 8) == [b"a", b"b"]
    assert fastpath.send_many(ch._addr, [b"ok", 3]) == (-2, lib.NEXPO_ETYPE)  # nothing sent
    assert len(ch) == 0
    ch.close()
    assert fastpath.send(ch._addr, b"x") == lib.NEXPO_ECLOSED
    assert fastpath.recv(ch._addr) == lib.NEXPO_ECLOSED
    with pytest.raises(TypeError, match="list or a tuple"):
        fastpath.send_many(ch._addr, iter([b"x"]))
    with pytest.raises(ValueError, match="max_n"):
        fastpath.recv_many(ch._addr, 0)
    with pytest.raises(TypeError, match="takes 2 arguments"):
        fastpath.send(ch._addr)  # type: ignore[call-arg]


GIL_FREE_COPY = 64 * 1024  # _fastpath.c: copies this long are made with the GIL released


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
    ch.send(b"d", timeout=1.0)  # a timeout skips the C attempt: the Python path sends it
    assert [ch.recv(), ch.recv(None), ch.recv(timeout=None), ch.recv(timeout=1)] == [b"a", b"b", b"c", b"d"]
    assert ch.send_many((b"t1", b"t2")) == 2
    assert ch.send_many(m for m in [b"g1"]) == 1  # not a list or tuple: Python path
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


def test_errors_come_from_the_python_methods() -> None:
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


def test_send_many_continues_in_python_when_the_ring_fills() -> None:
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

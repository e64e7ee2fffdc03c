"""Hypothesis: single-threaded, every mode behaves exactly like a bounded FIFO of bytes."""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from nexpo import Channel, ChannelClosed

messages = st.binary(max_size=300)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("send"), messages),
        st.tuples(st.just("recv"), st.none()),
        st.tuples(st.just("send_many"), st.lists(messages, max_size=6)),
        st.tuples(st.just("recv_many"), st.integers(1, 5)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(mode=st.sampled_from(["spsc", "mpsc", "spmc", "mpmc"]), capacity=st.integers(1, 9), script=ops)
def test_matches_a_bounded_fifo(mode: str, capacity: int, script: list[tuple[str, object]]) -> None:
    ch = Channel(capacity, mode=mode, max_message_size=300)  # type: ignore[arg-type]
    cap = ch.capacity
    model: deque[bytes] = deque()
    for op, arg in script:
        if op == "send":
            assert isinstance(arg, bytes)
            ok = ch.try_send(arg)
            assert ok == (len(model) < cap)
            if ok:
                model.append(arg)
        elif op == "recv":
            got = ch.try_recv()
            assert got == (model.popleft() if model else None)
        elif op == "send_many":
            assert isinstance(arg, list)
            room = cap - len(model)
            if arg and room == 0:
                try:
                    ch.send_many(arg, timeout=0)
                except TimeoutError:
                    pass
                else:
                    raise AssertionError("send_many into a full channel must time out")
            else:
                assert ch.send_many(arg, timeout=0) == min(len(arg), room)
                model.extend(arg[:room])
        else:
            assert isinstance(arg, int)
            if model:
                got_many = ch.recv_many(arg, timeout=0)
                assert got_many == [model.popleft() for _ in range(min(arg, len(got_many)))]
                assert 1 <= len(got_many) <= arg
            else:
                try:
                    ch.recv_many(arg, timeout=0)
                except TimeoutError:
                    pass
                else:
                    raise AssertionError("recv_many on an empty channel must time out")
        assert len(ch) == len(model)
    ch.close()
    assert list(ch) == list(model)
    try:
        ch.recv(timeout=0)
    except ChannelClosed:
        pass
    else:
        raise AssertionError("a closed, drained channel must raise ChannelClosed")


@settings(max_examples=60, deadline=None)
@given(msgs=st.lists(st.binary(max_size=5000), max_size=40))
def test_any_sizes_roundtrip_in_batches(msgs: list[bytes]) -> None:
    ch = Channel(64, max_message_size=5000)
    assert ch.send_many(msgs) == len(msgs)
    got: list[bytes] = []
    while len(got) < len(msgs):
        got += ch.recv_many(7)
    assert got == msgs

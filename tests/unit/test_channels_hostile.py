"""Channels against hostile input: a peer process rewriting a shared ring, a list mutated during
send_many, native handles replaced from Python, infinite timeouts (issue 15, rows 1-3 and 12).

Anything that used to crash the process runs in a subprocess with a kill timeout, so a
regression fails one test instead of the run.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexpo import Channel, ChannelCorrupted, NexpoError

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from ring_peer import KIND_HEAP, KIND_REF, Peer  # noqa: E402


@pytest.fixture
def name() -> Iterator[str]:
    shm = f"nexpo-hostile-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield shm
    Path("/dev/shm", shm).unlink(missing_ok=True)


PRELUDE = """
import os, struct, sys, threading, time, uuid
from nexpo import Channel, ChannelCorrupted
from ring_peer import Peer, KIND_HEAP, KIND_REF
name = os.environ["NEXPO_HOSTILE_NAME"]
"""


def run_isolated(code: str, timeout: float = 60) -> str:
    """Run PRELUDE + ``code`` in a fresh interpreter (ring_peer importable); fail on a signal, a
    hang or a non-zero exit, and return its stdout."""
    shm = f"nexpo-hostile-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # unlinked here even if it dies
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
               NEXPO_HOSTILE_NAME=shm)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
            capture_output=True, text=True, timeout=timeout, env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the subprocess hung (killed after {timeout} s)")
    finally:
        Path("/dev/shm", shm).unlink(missing_ok=True)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout




# --- row 1: what a peer writes into a slot ------------------------------------------------------


@pytest.mark.parametrize("mode", ["spsc", "mpmc"])
@pytest.mark.parametrize("kind", [KIND_HEAP, KIND_REF])
def test_a_pointer_slot_in_a_shared_ring_is_refused(mode: str, kind: int) -> None:
    # Before: kind 2 handed an arbitrary PyObject* to Python, kind 1 free()d a peer's pointer.
    out = run_isolated(
        f"""
        creator = Channel.create_shared(name, 4, mode={mode!r}, max_message_size=32)
        ch = Channel.open_shared(name)
        creator.send(b"hello")
        victim = bytes(bytearray(b"an object of ours" * 3))
        refs = sys.getrefcount(victim)
        with Peer(name) as peer:
            peer.set_slot(0, "kind", {kind})
            peer.set_payload(0, struct.pack("<QQ", id(victim), id(victim) + 32))
        for attempt in (lambda: ch.recv(timeout=0.5), ch.try_recv, lambda: ch.send(b"x")):
            try:
                attempt()
            except ChannelCorrupted as exc:
                print("corrupted:", exc)
            else:
                print("no error")
        assert sys.getrefcount(victim) == refs
        creator.close()
        """
    )
    assert out.count("corrupted:") == 3, out
    assert "another process" in out


@pytest.mark.parametrize("mode", ["spsc", "mpsc", "mpmc"])
@pytest.mark.parametrize("how", ["recv", "try_recv", "recv_many", "select"])
def test_a_length_over_the_slot_is_refused(name: str, mode: str, how: str) -> None:
    # Before: a length of 150 in a 32-byte ring returned 150 bytes (read past the slot).
    from nexpo import select

    creator = Channel.create_shared(name, 4, mode=mode, max_message_size=32)  # type: ignore[arg-type]
    ch = Channel.open_shared(name)
    try:
        creator.send(b"x" * 10)
        with Peer(name) as peer:
            peer.set_slot(0, "len", 150)
        calls = {
            "recv": lambda: ch.recv(timeout=0.5),
            "try_recv": ch.try_recv,
            "recv_many": lambda: ch.recv_many(4, timeout=0.5),
            "select": lambda: select([ch], timeout=0.5),
        }
        with pytest.raises(ChannelCorrupted, match="length over the slot"):
            calls[how]()
        with pytest.raises(ChannelCorrupted):  # sticky: this process stopped trusting the ring
            ch.send(b"y", timeout=0.5)
    finally:
        ch.close()
        creator.close()


def test_header_limits_raised_by_a_peer_do_not_change_what_we_write(name: str) -> None:
    # Before: a peer raising max_message in the header made an honest sender write a message
    # too long for the slot as a pointer to its own heap (kind 1) into shared memory.
    creator = Channel.create_shared(name, 4, mode="mpmc", max_message_size=32)
    ch = Channel.open_shared(name)
    try:
        with Peer(name) as peer:
            peer.set("max_message", 1 << 20)
            peer.set("inline_max", 1 << 20)
            peer.set("capacity", 1 << 20)
            peer.set("mask", (1 << 64) - 1)
            peer.set("stride", 1 << 30)
            peer.set("mode", 77)
            with pytest.raises(ValueError, match="max_message_size"):
                ch.send(b"z" * 100)
            ch.send(b"fits")
            assert all(peer.get_slot(i, "kind") == 0 for i in range(4))
        assert creator.recv(timeout=1) == b"fits"
        assert ch.max_message_size == 32 and ch.capacity == 4 and ch.mode == "mpmc"
    finally:
        ch.close()
        creator.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [("capacity", 3), ("capacity", 1 << 40), ("mask", 12345), ("stride", 8), ("max_message", 1 << 30),
     ("inline_max", 7), ("mode", 9), ("shared", 0)],
)
def test_open_refuses_a_header_with_garbage_geometry(name: str, field: str, value: int) -> None:
    creator = Channel.create_shared(name, 4, max_message_size=32)
    try:
        with Peer(name) as peer:
            peer.set(field, value)
        with pytest.raises(ChannelCorrupted, match="header is corrupted"):
            Channel.open_shared(name)
    finally:
        creator.close()


def test_open_refuses_a_truncated_file(name: str) -> None:
    creator = Channel.create_shared(name, 64, max_message_size=1024)
    try:
        with Peer(name) as peer:
            peer.truncate(peer.size // 2)
        with pytest.raises(ChannelCorrupted, match="larger than the file"):
            Channel.open_shared(name)
        with Peer(name) as peer:
            peer.truncate(100)
        with pytest.raises(ValueError, match="too small"):
            Channel.open_shared(name)
    finally:
        creator.close()


@pytest.mark.parametrize("mode", ["spsc", "mpmc"])
def test_a_file_truncated_after_open_is_corruption_not_sigbus(mode: str) -> None:
    # Before: SIGBUS killed the process on its next touch of a lost page.
    out = run_isolated(
        f"""
        creator = Channel.create_shared(name, 64, mode={mode!r}, max_message_size=4096)
        ch = Channel.open_shared(name)
        for i in range(40):
            creator.send(bytes([i]) * 4000)
        with Peer(name) as peer:
            peer.truncate(0)
        for c in (ch, creator):
            for attempt in (lambda: c.recv(timeout=0.5), lambda: c.send(b"x", timeout=0.5)):
                try:
                    got = attempt()
                except ChannelCorrupted as exc:
                    print("corrupted:", "truncated" in str(exc))
                else:
                    print("went through", got is None or len(got))
        creator.close()
        ch.close()
        print("alive")
        """
    )
    assert out.splitlines()[-1] == "alive"
    assert "corrupted: True" in out


# --- row 2: sequence numbers and positions a peer moves -----------------------------------------


@pytest.mark.parametrize("side", ["recv", "send"])
@pytest.mark.parametrize("mode", ["mpsc", "spmc", "mpmc"])
def test_a_sequence_from_the_future_is_a_bounded_wait_then_corruption(side: str, mode: str) -> None:
    # Before: recv/send(timeout=0.5) spun forever holding the GIL; only SIGKILL ended it.
    out = run_isolated(
        f"""
        creator = Channel.create_shared(name, 4, mode={mode!r}, max_message_size=32)
        ch = Channel.open_shared(name)
        ticks = 0
        stop = False
        def ticker():
            global ticks
            while not stop:
                ticks += 1
                time.sleep(0.001)
        t = threading.Thread(target=ticker)
        t.start()
        with Peer(name) as peer:
            if {side!r} == "send":
                for i in range(4):
                    ch.send(b"m")
                    creator.recv()
                peer.set_slot(peer.get("tail"), "seq", peer.get("tail") + 1000)
            else:
                peer.set_slot(0, "seq", 5000)
        start = time.monotonic()
        try:
            if {side!r} == "send":
                ch.send(b"x", timeout=0.5)
            else:
                ch.recv(timeout=0.5)
        except ChannelCorrupted as exc:
            print("corrupted:", exc)
        except TimeoutError:
            print("timeout")
        took = time.monotonic() - start
        stop = True
        t.join()
        print("took", round(took, 2), "ticks", ticks)
        creator.close()
        """,
        timeout=30,
    )
    assert "corrupted:" in out and "sequence number" in out, out


@pytest.mark.parametrize("mode", ["mpsc", "mpmc"])
def test_a_stuck_slot_times_out_with_the_gil_released(mode: str) -> None:
    out = run_isolated(
        f"""
        creator = Channel.create_shared(name, 4, mode={mode!r}, max_message_size=32)
        ch = Channel.open_shared(name)
        with Peer(name) as peer:
            peer.set("tail", 1)       # a claim that is never published (SPSC would read it)
        ticks = 0
        stop = False
        def ticker():
            global ticks
            while not stop:
                ticks += 1
                time.sleep(0.001)
        t = threading.Thread(target=ticker)
        t.start()
        start = time.monotonic()
        try:
            print("got", ch.recv(timeout=0.5))
        except TimeoutError:
            print("timeout")
        except ChannelCorrupted:
            print("corrupted")
        took = time.monotonic() - start
        stop = True
        t.join()
        print("ticks", ticks, "took", round(took, 2))
        creator.close()
        """,
        timeout=30,
    )
    lines = out.split()
    assert lines[0] == "timeout", out
    assert int(lines[lines.index("ticks") + 1]) > 50, f"the wait held the GIL: {out}"


@pytest.mark.parametrize("mode", ["spsc", "mpsc", "mpmc"])
def test_positions_scribbled_by_a_peer_never_hold_us(mode: str) -> None:
    out = run_isolated(
        f"""
        import random
        creator = Channel.create_shared(name, 8, mode={mode!r}, max_message_size=32)
        ch = Channel.open_shared(name)
        stop = False
        def scribble():
            rng = random.Random(7)
            with Peer(name) as peer:
                while not stop:
                    peer.set(rng.choice(["head", "tail"]), rng.randrange(1 << 64))
                    peer.set_slot(rng.randrange(8), "seq", rng.randrange(1 << 64))
        t = threading.Thread(target=scribble)
        t.start()
        outcomes = {{}}
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            for op in (lambda: ch.recv(timeout=0.05), lambda: ch.send(b"m", timeout=0.05),
                       lambda: ch.recv_many(8, timeout=0.05),
                       lambda: ch.send_many([b"a", b"b"], timeout=0.05)):
                try:
                    op()
                    key = "ok"
                except Exception as exc:
                    key = type(exc).__name__
                outcomes[key] = outcomes.get(key, 0) + 1
        stop = True
        t.join()
        print(sorted(outcomes))
        creator.close()
        """,
        timeout=60,
    )
    kinds = set(out.strip().splitlines()[-1].strip("[]").replace("'", "").split(", "))
    assert set(kinds) <= {"ok", "ChannelCorrupted", "TimeoutError", "ChannelClosed", "ValueError"}, out


# --- row 3: send_many and a list another thread mutates ----------------------------------------


@pytest.mark.parametrize("shared", [False, True])
def test_send_many_survives_a_list_mutated_during_a_long_copy(shared: bool) -> None:
    # Before: items >= 64 KiB that are not bytes are copied with the GIL released; another
    # thread clearing the list freed them under the copy (SIGSEGV in 10 of 10 runs).
    out = run_isolated(
        f"""
        if {shared}:
            ch = Channel.create_shared(name, 16, max_message_size=1 << 19)
        else:
            ch = Channel(16, max_message_size=1 << 19)
        big = [bytearray(256 * 1024) for _ in range(4)] + [memoryview(bytearray(128 * 1024))]
        msgs = list(big)
        stop = False
        def mutate():
            while not stop:
                msgs.clear()
                msgs.extend(bytearray(200 * 1024) for _ in range(3))
                msgs[:] = list(big)
        t = threading.Thread(target=mutate, daemon=True)
        t.start()
        deadline = time.monotonic() + 1.5
        sent = 0
        while time.monotonic() < deadline:
            try:
                sent += ch.send_many(msgs, timeout=0.05)
            except (TypeError, TimeoutError):
                pass
            try:
                ch.recv_many(64, timeout=0.05)
            except TimeoutError:
                pass
        stop = True
        t.join()
        ch.close()
        print("alive", sent > 0)
        """,
        timeout=60,
    )
    assert "alive True" in out


# --- row 12: infinite timeouts -----------------------------------------------------------------


def test_infinite_timeouts_wait_without_bound() -> None:
    # Before: timeout=float("inf") raised OverflowError.
    ch = Channel(2)
    taken: list[bytes] = []

    def later() -> None:
        time.sleep(0.2)
        ch.send(b"late")
        time.sleep(0.2)
        taken.append(ch.recv())

    t = threading.Thread(target=later)
    t.start()
    assert ch.recv(timeout=float("inf")) == b"late"
    ch.send(b"a", timeout=float("inf"))
    ch.send(b"b", timeout=float("inf"))
    ch.send(b"c", timeout=float("inf"))  # full until `later` takes "a"
    t.join()
    assert taken == [b"a"]
    assert ch.recv_many(4, timeout=float("inf")) == [b"b", b"c"]


def test_infinite_timeouts_are_accepted_everywhere() -> None:
    from nexpo import select

    ch = Channel(4)
    ch.send(b"a")
    assert select([ch], timeout=float("inf")) == (ch, b"a")
    assert ch.send_many([b"b", b"c"], timeout=float("inf")) == 2
    assert ch.recv_many(4, timeout=float("inf")) == [b"b", b"c"]


# --- native handles are not Python attributes ------------------------------------------------------


def test_native_handle_attributes_cannot_be_replaced() -> None:
    ch = Channel(4)
    with pytest.raises(AttributeError):
        ch._addr = 12345  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ch._lend = False  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ch._h = None  # type: ignore[misc,assignment]
    with pytest.raises(AttributeError):
        del ch._h
    with pytest.raises(ValueError, match="already has a native handle"):
        ch._bind(ch._addr, True)
    ch.send(b"still fine")
    assert ch.recv() == b"still fine"


def test_bind_refuses_addresses_that_are_not_live_handles() -> None:
    owner = Channel(4)
    for bogus in (1, 0xDEADBEEF, id(owner), owner._addr):  # the last one: owned already
        fresh = Channel.__new__(Channel)
        with pytest.raises(ValueError, match="not a live channel handle"):
            fresh._bind(bogus, True)
    with pytest.raises(ValueError, match="not a live channel handle"):
        Channel.__new__(Channel)._bind(0, True)


def test_an_unbound_channel_fails_cleanly() -> None:
    fresh = Channel.__new__(Channel)
    for call in (lambda: fresh.send(b"x"), fresh.recv, fresh.try_recv, lambda: fresh.send_many([b"x"]),
                 lambda: len(fresh), fresh.close):
        with pytest.raises((ValueError, AttributeError, NexpoError)):
            call()


def test_the_handle_is_released_with_the_channel() -> None:
    # The C base class owns the handle: a dropped channel releases it, once.
    for _ in range(1000):
        ch = Channel(2)
        ch.send(b"x" * 100)
        del ch
    assert struct.calcsize("P") == 8 or True

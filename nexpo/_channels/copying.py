"""Receives that copy through cffi, for asyncio and ``select`` (any thread, GIL released by
cffi): per-thread output buffers, status -> exception, timeouts in nanoseconds.

A lent message (nexpo/_channel/lend.c) received here is copied; the runtime gives its
reference back to the C type, which drops it on its next call."""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Final

from nexpo._native import CData, error_for, ffi, lib
from nexpo.errors import ChannelClosed

if TYPE_CHECKING:
    from nexpo._channel import Channel

OK: Final = lib.NEXPO_OK
EAGAIN: Final = lib.NEXPO_EAGAIN
ETIMEOUT: Final = lib.NEXPO_ETIMEOUT
ECLOSED: Final = lib.NEXPO_ECLOSED
INTEREST_RECV: Final = 1
INTEREST_SEND: Final = 2
ON_BEHALF: Final = 4  # a helper thread's wait: does not hold an SPSC side (see runtime.h)
# Long native waits made from Python (select) are cut into slices so Ctrl-C is answered.
WAIT_SLICE_NS: Final = 100_000_000
SCRATCH_SIZE: Final = 1 << 16


class Scratch(threading.local):
    """Per-thread output buffers, so a receive allocates nothing but its result."""

    def __init__(self) -> None:
        self.buf = ffi.new("char[]", SCRATCH_SIZE)
        self.length = ffi.new("size_t *")
        self.heap = ffi.new("char **")
        self.index = ffi.new("size_t *")


scratch: Final = Scratch()


def handle(channel: Channel) -> CData:
    """The native handle for cffi calls (borrowed: the caller keeps the Channel alive while
    the call runs, e.g. by passing the Channel, not the handle, to another thread)."""
    addr = channel._addr
    if not addr:
        raise ValueError("this Channel was not initialised (no native channel)")
    return ffi.cast("nexpo_channel *", addr)


def take(s: Scratch) -> bytes:
    """The received message: from the scratch buffer, or from a malloc'd block we free."""
    block = s.heap[0]
    if block:
        try:
            data: bytes = ffi.unpack(block, s.length[0])
        finally:
            lib.nexpo_free(block)
        return data
    out: bytes = ffi.unpack(s.buf, s.length[0])
    return out


def timeout_ns(timeout: float | None) -> int:
    """None or infinity -> -1 (forever, waited in slices); seconds -> nanoseconds."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"timeout must be >= 0 seconds or None, got {timeout}")
    if math.isinf(timeout):
        return -1
    return min(int(timeout * 1e9), 2**62)


def failure(status: int, op: str) -> Exception:
    """The exception for a failed channel status (as the C type raises them)."""
    if status == ETIMEOUT:
        return TimeoutError(f"channel {op} timed out")
    if status == EAGAIN:
        return TimeoutError(f"channel {op} would block")
    if status == ECLOSED:
        if op.startswith("send"):
            return ChannelClosed("send on a closed channel")
        return ChannelClosed("the channel is closed and drained")
    return error_for(status)


def wait_on_behalf(channel: Channel, interest: int, timeout: int) -> int:
    """A helper thread's native wait (taking nothing, not holding an SPSC side)."""
    return int(lib.nexpo_channel_wait(handle(channel), interest | ON_BEHALF, timeout))

"""asyncio for nexpo.Channel: ``arecv``, ``asend`` and ``async for``, woken by the native side
through an event fd registered with the event loop, never by polling. A cancelled wait takes
nothing from the channel.

Shared channels: another process's send cannot write our event fd, so a helper thread blocked
in a native wait (taking nothing) stands in for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, TypeVar

from nexpo._channels.copying import (
    EAGAIN,
    INTEREST_RECV,
    INTEREST_SEND,
    OK,
    SCRATCH_SIZE,
    WAIT_SLICE_NS,
    failure,
    handle,
    scratch,
    take,
    wait_on_behalf,
)
from nexpo._native import check, ffi, lib, read_buffer
from nexpo.errors import ChannelClosed

if TYPE_CHECKING:
    from nexpo.channels import Channel

T = TypeVar("T")


class LoopWatch:
    """One event loop's view of one channel: an event fd the native side writes to when the
    channel may have become readable or writable, and the futures waiting for that."""

    def __init__(self, channel: Channel, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.recv_waiters: list[asyncio.Future[None]] = []
        self.send_waiters: list[asyncio.Future[None]] = []
        self.rfd, self.wfd = _event_fd()
        ids = ffi.new("int32_t[2]")
        try:
            check(lib.nexpo_channel_watch(handle(channel), self.wfd, INTEREST_RECV, ids))
            check(lib.nexpo_channel_watch(handle(channel), self.wfd, INTEREST_SEND, ids + 1))
        except BaseException:
            _close_fds(self.rfd, self.wfd)
            raise
        self.recv_id, self.send_id = int(ids[0]), int(ids[1])
        loop.add_reader(self.rfd, self._on_ready)

    def _on_ready(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self.rfd, 4096)
        self.wake_all()

    def wake_all(self) -> None:
        waiters = self.recv_waiters + self.send_waiters
        self.recv_waiters.clear()
        self.send_waiters.clear()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def detach(self, channel: Channel) -> None:
        if not self.loop.is_closed():
            self.loop.remove_reader(self.rfd)
        if channel._addr:
            lib.nexpo_channel_unwatch(handle(channel), self.recv_id)
            lib.nexpo_channel_unwatch(handle(channel), self.send_id)
        _close_fds(self.rfd, self.wfd)
        self.wake_all()


def _event_fd() -> tuple[int, int]:
    """(read end, write end): one eventfd on Linux, a non-blocking pipe elsewhere."""
    if hasattr(os, "eventfd"):
        fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        return fd, fd
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    return r, w


def _close_fds(rfd: int, wfd: int) -> None:
    os.close(rfd)
    if wfd != rfd:
        os.close(wfd)


def watch(channel: Channel) -> LoopWatch:
    """The running loop's watch of ``channel`` (made on first use, dropped with the loop)."""
    loop = asyncio.get_running_loop()
    try:
        loops = channel._loops
    except AttributeError:  # made by create_shared/open_shared, or never watched
        loops = channel._loops = {}
    w = loops.get(id(loop))
    if w is None or w.loop is not loop:
        for key, old in list(loops.items()):
            if old.loop.is_closed():
                old.detach(channel)
                del loops[key]
        w = LoopWatch(channel, loop)
        loops[id(loop)] = w
        weakref.finalize(loop, _forget_loop, weakref.ref(channel), id(loop))
    return w


def _forget_loop(ref: weakref.ReferenceType[Channel], key: int) -> None:
    channel = ref()
    if channel is not None:
        w = getattr(channel, "_loops", {}).pop(key, None)
        if w is not None:
            w.detach(channel)


def wake_all(channel: Channel) -> None:
    """close(): every asyncio waiter looks again (and sees the channel closed)."""
    for w in list(getattr(channel, "_loops", {}).values()):
        w.wake_all()


def detach_all(channel: Channel) -> None:
    loops = getattr(channel, "_loops", {})
    for w in loops.values():
        w.detach(channel)
    loops.clear()


async def _wait_for(waiters: list[asyncio.Future[None]], loop: asyncio.AbstractEventLoop) -> None:
    fut: asyncio.Future[None] = loop.create_future()
    waiters.append(fut)
    try:
        await fut
    finally:
        if fut in waiters:
            waiters.remove(fut)


async def arecv(channel: Channel) -> bytes:
    """Receive one message without blocking the event loop. Cancelling takes nothing."""
    if channel.name is not None:
        msg: bytes = await _shared_wait_then(channel, channel.try_recv, INTEREST_RECV)
        return msg
    got = channel.try_recv()
    if got is not None:
        return got
    w = watch(channel)
    s = scratch
    while True:
        h = handle(channel)
        status = lib.nexpo_channel_try_recv_arm(h, w.recv_id, s.buf, SCRATCH_SIZE, s.length, s.heap)
        if status == OK:
            return take(s)
        if status != EAGAIN:
            raise failure(status, "recv")
        await _wait_for(w.recv_waiters, w.loop)


async def asend(channel: Channel, msg: bytes | bytearray | memoryview) -> None:
    """Send one message without blocking the event loop. Cancelling sends nothing."""
    data, n = read_buffer(msg, "msg")
    if channel.name is not None:
        await _shared_wait_then(channel, lambda: channel.try_send(msg) or None, INTEREST_SEND)
        return
    if channel.try_send(msg):
        return
    w = watch(channel)
    while True:
        status = lib.nexpo_channel_try_send_arm(handle(channel), w.send_id, data, n)
        if status == OK:
            return
        if status != EAGAIN:
            raise failure(status, "send")
        await _wait_for(w.send_waiters, w.loop)


async def _shared_wait_then(channel: Channel, attempt: Callable[[], T | None], interest: int) -> T:
    """Shared rings: a helper thread waits natively (taking nothing), then we try;
    cancellation leaves the ring intact."""
    loop = asyncio.get_running_loop()
    while True:
        result = attempt()
        if result is not None:
            return result
        # The helper gets the Channel, not its handle: a cancelled wait returns at once, and
        # the Channel must outlive the native call still running in the helper thread.
        await loop.run_in_executor(None, wait_on_behalf, channel, interest, WAIT_SLICE_NS)


async def aiter(channel: Channel) -> AsyncIterator[bytes]:
    while True:
        try:
            msg = await arecv(channel)
        except ChannelClosed:
            return
        yield msg


__all__ = ["LoopWatch", "aiter", "arecv", "asend", "detach_all", "wake_all", "watch"]

"""``select`` and ``aselect``: receive from whichever channel is ready first (Go's select on
receive). Both copy the message out through cffi (nexpo._channels.copying)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

from nexpo._channel import Channel as _ChannelType
from nexpo._channels import aio
from nexpo._channels.copying import (
    EAGAIN,
    ECLOSED,
    ETIMEOUT,
    INTEREST_RECV,
    OK,
    SCRATCH_SIZE,
    WAIT_SLICE_NS,
    failure,
    handle,
    scratch,
    take,
    timeout_ns,
    wait_on_behalf,
)
from nexpo._native import ffi, lib
from nexpo.errors import ChannelClosed

if TYPE_CHECKING:
    from nexpo.channels import Channel


def _check_channels(channels: Sequence[Channel]) -> list[Channel]:
    chans = list(channels)
    if not chans:
        raise ValueError("channels must not be empty")
    for i, ch in enumerate(chans):
        if not isinstance(ch, _ChannelType):
            raise TypeError(f"channels[{i}] must be a nexpo.Channel, not {type(ch).__name__}")
    return chans


def select(channels: Sequence[Channel], timeout: float | None = None) -> tuple[Channel, bytes]:
    """Receive from whichever channel has a message first (Go's select on receive).

    Channels are tried round robin, so none is starved. Raises TimeoutError after ``timeout``
    seconds, ChannelClosed when every channel is closed and drained.
    """
    chans = _check_channels(channels)
    handles = ffi.new("nexpo_channel *[]", [handle(c) for c in chans])
    s = scratch
    left = timeout_ns(timeout)
    while True:
        step = WAIT_SLICE_NS if left < 0 else min(left, WAIT_SLICE_NS)
        status = lib.nexpo_channel_select(
            handles, len(chans), step, s.index, s.buf, SCRATCH_SIZE, s.length, s.heap
        )
        if status == OK:
            return chans[s.index[0]], take(s)
        if status != ETIMEOUT:
            raise failure(status, "recv")
        if left >= 0:
            left -= step
            if left <= 0:
                raise failure(ETIMEOUT, "select")


_rotor = 0


async def aselect(
    channels: Sequence[Channel],
    timeout: float | None = None,  # noqa: ASYNC109 - mirrors select(); asyncio.timeout() works too
) -> tuple[Channel, bytes]:
    """The asyncio form of :func:`select`. Cancelling takes nothing from any channel."""
    global _rotor
    chans = _check_channels(channels)
    total = timeout_ns(timeout)
    loop = asyncio.get_running_loop()
    deadline = None if total < 0 else loop.time() + total / 1e9
    start = _rotor % len(chans)
    _rotor += 1
    order = chans[start:] + chans[:start]
    if any(c.name is not None for c in order):
        return await _aselect_shared(order, deadline)
    s = scratch
    while True:
        closed = 0
        fut: asyncio.Future[None] = loop.create_future()
        watches = []
        try:
            for ch in order:
                watch = aio.watch(ch)
                status = lib.nexpo_channel_try_recv_arm(
                    handle(ch), watch.recv_id, s.buf, SCRATCH_SIZE, s.length, s.heap
                )
                if status == OK:
                    return ch, take(s)
                if status == ECLOSED:
                    closed += 1
                elif status != EAGAIN:
                    raise failure(status, "recv")
                watch.recv_waiters.append(fut)
                watches.append(watch)
            if closed == len(order):
                raise ChannelClosed("every channel is closed and drained")
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                raise TimeoutError("select timed out")
            await asyncio.wait_for(asyncio.shield(fut), left) if left is not None else await fut
        finally:
            for watch in watches:
                if fut in watch.recv_waiters:
                    watch.recv_waiters.remove(fut)
            if not fut.done():
                fut.cancel()


async def _aselect_shared(order: list[Channel], deadline: float | None) -> tuple[Channel, bytes]:
    loop = asyncio.get_running_loop()
    while True:
        closed = 0
        for ch in order:
            try:
                msg = ch.try_recv()
            except ChannelClosed:
                closed += 1
                continue
            if msg is not None:
                return ch, msg
        if closed == len(order):
            raise ChannelClosed("every channel is closed and drained")
        if deadline is not None and loop.time() >= deadline:
            raise TimeoutError("select timed out")
        # Wait (taking nothing) on the first channel for at most 1 ms, then re-scan: a native
        # wait cannot span rings of several processes, so this one case re-checks periodically.
        await loop.run_in_executor(None, wait_on_behalf, order[0], INTEREST_RECV, 1_000_000)

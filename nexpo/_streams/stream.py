"""``Stream``: a bounded async buffer with a backpressure policy.

Properties:
- ``BLOCK``: ``put`` waits for room (FIFO among waiting producers); nothing is lost.
- ``DROP_NEWEST``: a put into a full stream discards the item being put.
- ``DROP_OLDEST``: a put into a full stream discards the oldest buffered item to make room.
- Every accepted item and every drop is counted (``items``, ``dropped``, and the
  ``nexpo_stream_items_total`` / ``nexpo_stream_dropped_total`` metrics when named).
- ``close()``: further puts raise StreamClosed (waiting producers too); consumers drain what is
  buffered, then their ``async for`` ends.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import AsyncIterator
from typing import TypeVar

from nexpo import _stats
from nexpo._streams.flow import Flow
from nexpo.errors import StreamClosed

T = TypeVar("T")


class Policy(enum.Enum):
    BLOCK = "block"
    DROP_NEWEST = "drop_newest"
    DROP_OLDEST = "drop_oldest"


BLOCK = Policy.BLOCK
DROP_NEWEST = Policy.DROP_NEWEST
DROP_OLDEST = Policy.DROP_OLDEST


def _wake_one(waiters: deque[asyncio.Future[None]]) -> None:
    while waiters:
        waiter = waiters.popleft()
        if not waiter.done():
            waiter.set_result(None)
            return


class Stream(Flow[T]):
    """``maxsize`` items at most; ``name`` labels its metrics (None: not exported)."""

    def __init__(self, maxsize: int = 1000, policy: Policy = BLOCK, *, name: str | None = "default") -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be an int >= 1, got {maxsize!r}")
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be BLOCK, DROP_NEWEST or DROP_OLDEST, got {policy!r}")
        super().__init__(self._items)
        self.maxsize = maxsize
        self.policy = policy
        self.name = name
        self.items = 0
        self.dropped = 0
        self._stats = _stats.stream(name, policy.value) if name is not None else None
        self._buffer: deque[T] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._putters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    def __repr__(self) -> str:
        return f"<Stream {self.name} {len(self._buffer)}/{self.maxsize} {self.policy.value}>"

    def __len__(self) -> int:
        return len(self._buffer)

    @property
    def closed(self) -> bool:
        return self._closed

    def _accept(self, item: T) -> None:
        self._buffer.append(item)
        self.items += 1
        if self._stats is not None:
            self._stats.items += 1
        if self._getters:
            _wake_one(self._getters)

    def _drop(self) -> None:
        self.dropped += 1
        if self._stats is not None:
            self._stats.dropped += 1

    def put_nowait(self, item: T) -> bool:
        """Add ``item`` without waiting. True if it was buffered; False if the drop policy
        discarded it. A full BLOCK stream raises asyncio.QueueFull."""
        if self._closed:
            raise StreamClosed(f"stream {self.name!r} is closed")
        if len(self._buffer) < self.maxsize:
            self._accept(item)
            return True
        if self.policy is DROP_NEWEST:
            self._drop()
            return False
        if self.policy is DROP_OLDEST:
            self._buffer.popleft()
            self._drop()
            self._accept(item)
            return True
        raise asyncio.QueueFull(f"stream {self.name!r} is full ({self.maxsize} items)")

    async def put(self, item: T) -> bool:
        """Add ``item``; with BLOCK wait for room. Returns like ``put_nowait``."""
        while self.policy is BLOCK and len(self._buffer) >= self.maxsize and not self._closed:
            room: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._putters.append(room)
            try:
                await room
            except BaseException:
                if room.done() and not room.cancelled():
                    _wake_one(self._putters)  # hand the room we were given to the next producer
                raise
        return self.put_nowait(item)

    async def get(self) -> T:
        """The next item; StreamClosed once the stream is closed and drained."""
        while not self._buffer:
            if self._closed:
                raise StreamClosed(f"stream {self.name!r} is closed")
            ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(ready)
            try:
                await ready
            except BaseException:
                if ready.done() and not ready.cancelled():
                    _wake_one(self._getters)
                raise
        item = self._buffer.popleft()
        if self._putters:
            _wake_one(self._putters)
        return item

    def close(self) -> None:
        """No more puts; consumers finish what is buffered. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for waiters in (self._getters, self._putters):
            while waiters:
                _wake_one(waiters)

    async def _items(self) -> AsyncIterator[T]:
        while True:
            try:
                item = await self.get()
            except StreamClosed:
                return
            yield item

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

"""``Bulkhead``: cap the calls in flight to one dependency, and the calls queued for it.

A slot is an ``asyncio.Semaphore`` permit; callers beyond ``max_concurrent`` wait (FIFO) while
fewer than ``max_waiting`` are already waiting, otherwise they are rejected at once with
BulkheadFull. Rejecting early keeps one slow dependency from soaking up every request.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

from nexpo import _stats
from nexpo.errors import BulkheadFull

P = ParamSpec("P")
R = TypeVar("R")


class Bulkhead:
    def __init__(self, name: str = "default", *, max_concurrent: int = 10, max_waiting: int = 0) -> None:
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValueError(f"max_concurrent must be an int >= 1, got {max_concurrent!r}")
        if isinstance(max_waiting, bool) or not isinstance(max_waiting, int) or max_waiting < 0:
            raise ValueError(f"max_waiting must be an int >= 0, got {max_waiting!r}")
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self._slots = asyncio.Semaphore(max_concurrent)
        self._active = 0
        self._waiting = 0
        self.rejected = 0
        _stats.bulkhead_created(name)

    def __repr__(self) -> str:
        return f"<Bulkhead {self.name} active={self._active} waiting={self._waiting}>"

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return self._waiting

    async def acquire(self) -> None:
        if self._active >= self.max_concurrent or self._waiting:
            if self._waiting >= self.max_waiting:
                self.rejected += 1
                _stats.bulkhead_rejected(self.name)
                raise BulkheadFull(
                    f"bulkhead {self.name!r}: {self._active} calls running, {self._waiting} waiting"
                )
            self._waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self._waiting -= 1
        else:
            await self._slots.acquire()  # a free permit: returns without suspending
        self._active += 1

    def release(self) -> None:
        self._active -= 1
        self._slots.release()

    async def __aenter__(self) -> Bulkhead:
        await self.acquire()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Decorate an async function so every call takes a slot."""

        @functools.wraps(fn)
        async def limited(*args: P.args, **kwargs: P.kwargs) -> R:
            async with self:
                return await fn(*args, **kwargs)

        return limited

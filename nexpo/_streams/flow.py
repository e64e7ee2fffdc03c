"""``Flow``: a lazy, pull-based pipeline over any async iterable, and its combinators
(``merge``, which needs a ``Stream`` as its buffer, is in merge.py)."""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar, overload

from nexpo._streams.iterators import END, aclose, next_or_end

T = TypeVar("T")
U = TypeVar("U")


def _check_count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


class Flow(Generic[T]):
    """An async iterable with combinators. Each ``async for`` runs the pipeline once."""

    def __init__(self, iterate: Callable[[], AsyncIterator[T]]) -> None:
        self._iterate = iterate

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    @overload
    def map(self, fn: Callable[[T], Awaitable[U]], *, concurrency: int = 1) -> Flow[U]: ...
    @overload
    def map(self, fn: Callable[[T], U], *, concurrency: int = 1) -> Flow[U]: ...
    def map(self, fn: Callable[[T], Any], *, concurrency: int = 1) -> Flow[Any]:
        """Apply ``fn`` (sync or async) to every item, up to ``concurrency`` calls at a time;
        results come out in input order. The first exception cancels the calls in flight and is
        raised to the consumer."""
        if not callable(fn):
            raise TypeError(f"fn must be callable, not {type(fn).__name__}")
        _check_count(concurrency, "concurrency")
        if concurrency == 1:
            return Flow(lambda: _map_serial(self, fn))
        return Flow(lambda: _map_concurrent(self, fn, concurrency))

    def filter(self, predicate: Callable[[T], Any]) -> Flow[T]:
        """Keep items for which ``predicate`` (sync or async) is true."""
        if not callable(predicate):
            raise TypeError(f"predicate must be callable, not {type(predicate).__name__}")
        return Flow(lambda: _filter(self, predicate))

    def batch(self, size: int, timeout: float | None = None) -> Flow[list[T]]:
        """Lists of ``size`` items; with ``timeout``, a shorter list once ``timeout`` seconds
        passed since its first item arrived. The last list may be short."""
        _check_count(size, "size")
        if timeout is not None and not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
        return Flow(lambda: _batch(self, size, timeout))


async def _map_serial(source: AsyncIterable[T], fn: Callable[[T], Any]) -> AsyncIterator[Any]:
    iterator = aiter(source)
    try:
        async for item in iterator:
            result = fn(item)
            if inspect.isawaitable(result):
                result = await result
            yield result
    finally:
        await aclose(iterator)


async def _call(fn: Callable[[T], Any], item: T) -> Any:
    result = fn(item)
    if inspect.isawaitable(result):
        result = await result
    return result


async def _map_concurrent(source: AsyncIterable[T], fn: Callable[[T], Any], limit: int) -> AsyncIterator[Any]:
    # An ordered window of tasks: the head is yielded as soon as it is done (so order holds while
    # up to `limit` calls run), the next input is fetched in its own task meanwhile (a quiet
    # source does not hold back finished results), and the first failure anywhere in the window
    # is raised at once. A TaskGroup must not span a `yield` (it would cancel whichever task
    # happens to be iterating), so the window owns its tasks and cancels them in `finally`.
    iterator = aiter(source)
    window: deque[asyncio.Task[Any]] = deque()
    fetch: asyncio.Task[T] | None = None
    failed: asyncio.Future[asyncio.Task[Any]] = asyncio.get_running_loop().create_future()

    def note_failure(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None and not failed.done():
            failed.set_result(task)

    exhausted = False
    try:
        while True:
            if fetch is None and not exhausted and len(window) < limit:
                fetch = asyncio.ensure_future(next_or_end(iterator))
            if fetch is not None and fetch.done():
                item = fetch.result()
                fetch = None
                if item is END:
                    exhausted = True
                else:
                    task = asyncio.ensure_future(_call(fn, item))
                    task.add_done_callback(note_failure)
                    window.append(task)
                continue
            if not window and fetch is None:
                return
            if failed.done():
                failed.result().result()  # raises the failure
            if window and window[0].done():
                yield window.popleft().result()
                continue
            waiting: list[asyncio.Future[Any]] = [failed]
            if window:
                waiting.append(window[0])
            if fetch is not None:
                waiting.append(fetch)
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        pending = [*window, *([fetch] if fetch is not None else [])]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        await aclose(iterator)


async def _filter(source: AsyncIterable[T], predicate: Callable[[T], Any]) -> AsyncIterator[T]:
    iterator = aiter(source)
    try:
        async for item in iterator:
            keep = predicate(item)
            if inspect.isawaitable(keep):
                keep = await keep
            if keep:
                yield item
    finally:
        await aclose(iterator)


async def _batch(source: AsyncIterable[T], size: int, window: float | None) -> AsyncIterator[list[T]]:
    iterator = aiter(source)
    if window is None:
        try:
            items: list[T] = []
            async for item in iterator:
                items.append(item)
                if len(items) >= size:
                    yield items
                    items = []
            if items:
                yield items
        finally:
            await aclose(iterator)
        return
    # With a timeout the next item is fetched in a task we can stop waiting for without
    # cancelling it: cancelling an async generator's __anext__ would finish the generator.
    loop = asyncio.get_running_loop()
    pending: asyncio.Task[T] | None = None
    try:
        while True:
            items = []
            deadline = 0.0
            while len(items) < size:
                if pending is None:
                    pending = asyncio.ensure_future(next_or_end(iterator))
                if items and not pending.done():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    done, _ = await asyncio.wait((pending,), timeout=remaining)
                    if not done:
                        break
                item = await pending
                pending = None
                if item is END:
                    if items:
                        yield items
                    return
                items.append(item)
                if len(items) == 1:
                    deadline = loop.time() + window
            yield items
    finally:
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        await aclose(iterator)

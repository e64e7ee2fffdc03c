"""``merge``: the items of several async iterables as they arrive, through a ``Stream`` buffer.

Its own module because it needs both ``Flow`` (what it returns) and ``Stream`` (a ``Flow``
subclass it buffers through): flow.py and stream.py stay free of each other's imports.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import TypeVar

from nexpo._streams.flow import Flow
from nexpo._streams.iterators import aclose
from nexpo._streams.stream import Stream

T = TypeVar("T")


def merge(*sources: AsyncIterable[T]) -> Flow[T]:
    """Items of all ``sources`` as they arrive; ends when all ended. The first failure cancels
    the other sources (an ``asyncio.TaskGroup`` runs one pump per source) and is raised."""
    for source in sources:
        if not hasattr(source, "__aiter__"):
            raise TypeError(f"merge takes async iterables, not {type(source).__name__}")
    return Flow(lambda: _merge(sources))


async def _merge(sources: tuple[AsyncIterable[T], ...]) -> AsyncIterator[T]:
    buffer: Stream[T] = Stream(maxsize=max(len(sources), 1), name=None)

    async def pump(source: AsyncIterable[T]) -> None:
        iterator = aiter(source)
        try:
            async for item in iterator:
                await buffer.put(item)
        finally:
            await aclose(iterator)

    async def pump_all() -> None:
        try:
            async with asyncio.TaskGroup() as group:
                for source in sources:
                    group.create_task(pump(source))
        finally:
            buffer.close()

    runner = asyncio.ensure_future(pump_all())
    try:
        async for item in buffer:
            yield item
        try:
            await runner
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)

"""nexpo.streams: drop policies with exact counts, close, combinators, clean cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from nexpo import _stats
from nexpo.streams import BLOCK, DROP_NEWEST, DROP_OLDEST, Flow, Stream, StreamClosed, merge


async def _collect(flow: Flow[Any]) -> list[Any]:
    return [item async for item in flow]


def _filled(items: list[Any], **kwargs: Any) -> Stream[Any]:
    stream: Stream[Any] = Stream(**kwargs)
    for item in items:
        stream.put_nowait(item)
    stream.close()
    return stream


def _only_current_task() -> bool:
    return asyncio.all_tasks() == {asyncio.current_task()}


@pytest.mark.parametrize(
    ("policy", "kept", "dropped"),
    [(DROP_NEWEST, [0, 1, 2], 7), (DROP_OLDEST, [7, 8, 9], 7)],
)
async def test_drop_policies_count_exactly(policy: Any, kept: list[int], dropped: int) -> None:
    stream: Stream[int] = Stream(maxsize=3, policy=policy, name=f"drops-{policy.value}")
    accepted = [await stream.put(i) for i in range(10)]
    stream.close()
    assert await _collect(stream) == kept
    assert stream.dropped == dropped
    assert accepted.count(False) == (dropped if policy is DROP_NEWEST else 0)
    stats = _stats.streams[(f"drops-{policy.value}", policy.value)]
    assert (stats.items, stats.dropped) == (10 - dropped if policy is DROP_NEWEST else 10, dropped)


async def test_block_waits_for_room_and_loses_nothing() -> None:
    stream: Stream[int] = Stream(maxsize=2, policy=BLOCK, name="block")
    await stream.put(0)
    await stream.put(1)
    with pytest.raises(asyncio.QueueFull):
        stream.put_nowait(2)
    producer = asyncio.ensure_future(stream.put(2))
    await asyncio.sleep(0)
    assert not producer.done()
    assert await stream.get() == 0
    await producer
    stream.close()
    assert await _collect(stream) == [1, 2]
    assert stream.dropped == 0


async def test_close_ends_iteration_after_draining_and_rejects_puts() -> None:
    stream: Stream[int] = Stream(maxsize=1)
    await stream.put(1)
    blocked = asyncio.ensure_future(stream.put(2))
    await asyncio.sleep(0)
    stream.close()
    with pytest.raises(StreamClosed):
        await blocked
    with pytest.raises(StreamClosed):
        await stream.put(3)
    assert await _collect(stream) == [1]
    with pytest.raises(StreamClosed):
        await stream.get()
    assert stream.closed


async def test_a_waiting_consumer_wakes_on_close() -> None:
    stream: Stream[int] = Stream()
    consumer = asyncio.ensure_future(_collect(stream))
    await asyncio.sleep(0)
    stream.close()
    assert await consumer == []


async def test_map_keeps_order_with_bounded_concurrency() -> None:
    running = 0
    peak = 0

    async def slow_square(x: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range((7 * x) % 5):  # finish out of order
            await asyncio.sleep(0)
        running -= 1
        return x * x

    stream = _filled(list(range(30)), maxsize=100)
    assert await _collect(stream.map(slow_square, concurrency=4)) == [x * x for x in range(30)]
    assert 1 < peak <= 4


async def test_map_filter_batch_chain_with_sync_and_async_functions() -> None:
    async def is_even(x: int) -> bool:
        return x % 2 == 0

    flow = _filled(list(range(10))).map(lambda x: x + 1).filter(is_even).batch(2)
    assert await _collect(flow) == [[2, 4], [6, 8], [10]]


async def test_map_error_cancels_calls_in_flight_and_reaches_the_consumer() -> None:
    cancelled: list[int] = []

    async def fn(x: int) -> int:
        if x == 3:
            raise ValueError("bad item")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(x)
            raise
        return x

    with pytest.raises(ValueError, match="bad item"):
        await _collect(_filled(list(range(10))).map(fn, concurrency=4).map(lambda x: x, concurrency=1))
    await asyncio.sleep(0)
    assert sorted(cancelled) == [0, 1, 2]
    assert _only_current_task()


async def test_batch_with_timeout_emits_a_partial_batch() -> None:
    stream: Stream[int] = Stream()
    got: asyncio.Queue[list[int]] = asyncio.Queue()

    async def consume() -> None:
        async for items in stream.batch(10, timeout=0.25):
            got.put_nowait(items)

    consumer = asyncio.ensure_future(consume())
    await stream.put(1)
    await stream.put(2)
    assert await got.get() == [1, 2]  # the timeout flushed it: 10 items never came
    for i in range(10):
        await stream.put(i)
    assert await got.get() == list(range(10))
    await stream.put(99)
    stream.close()
    assert await got.get() == [99]
    await consumer
    assert _only_current_task()


async def test_merge_interleaves_all_sources() -> None:
    async def numbers(start: int) -> AsyncIterator[int]:
        for i in range(start, start + 5):
            await asyncio.sleep(0)
            yield i

    merged = await _collect(merge(numbers(0), numbers(100), _filled([7, 8])))
    assert sorted(merged) == [*range(5), 7, 8, *range(100, 105)]
    assert await _collect(merge()) == []
    with pytest.raises(TypeError, match="async iterables"):
        merge([1, 2])  # type: ignore[arg-type]


async def test_merge_failure_cancels_the_other_sources() -> None:
    cancelled = asyncio.Event()

    async def forever() -> AsyncIterator[int]:
        try:
            while True:
                await asyncio.sleep(0)
                yield 1
        finally:
            cancelled.set()

    async def failing() -> AsyncIterator[int]:
        yield 2
        raise ConnectionError("source lost")

    with pytest.raises(ConnectionError, match="source lost"):
        await _collect(merge(forever(), failing()))
    assert cancelled.is_set()
    assert _only_current_task()


async def test_cancelling_the_consumer_cancels_the_pipeline() -> None:
    started = asyncio.Event()
    entered: list[int] = []
    cancelled: list[int] = []

    async def stuck(x: int) -> int:
        entered.append(x)
        if len(entered) == 3:
            started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(x)
            raise
        return x

    source: Stream[int] = Stream()
    for i in range(10):
        await source.put(i)
    other: Stream[int] = Stream()
    pipeline = merge(source.map(stuck, concurrency=3), other).batch(5, timeout=1)
    consumer = asyncio.ensure_future(_collect(pipeline))
    await started.wait()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert sorted(cancelled) == [0, 1, 2]
    assert _only_current_task()


async def test_a_consumer_that_stops_early_can_close_the_flow() -> None:
    stream = _filled(list(range(100)), maxsize=100)
    async with contextlib.aclosing(stream.map(lambda x: x, concurrency=2).__aiter__()) as items:
        async for item in items:
            if item == 3:
                break
    assert _only_current_task()


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        Stream(maxsize=0)
    with pytest.raises(TypeError, match="policy"):
        Stream(policy="block")  # type: ignore[arg-type]
    stream: Stream[int] = Stream()
    with pytest.raises(ValueError, match="concurrency"):
        stream.map(abs, concurrency=0)
    with pytest.raises(TypeError, match="callable"):
        stream.map(3)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="size"):
        stream.batch(0)
    with pytest.raises(ValueError, match="timeout"):
        stream.batch(2, timeout=0)
    with pytest.raises(TypeError, match="callable"):
        stream.filter(None)  # type: ignore[arg-type]
    assert repr(stream) == "<Stream default 0/1000 block>" and len(stream) == 0


async def test_map_yields_finished_results_while_the_source_is_quiet() -> None:
    stream: Stream[int] = Stream()
    results: asyncio.Queue[int] = asyncio.Queue()

    async def consume() -> None:
        async for item in stream.map(lambda x: x * 10, concurrency=4):
            results.put_nowait(item)

    consumer = asyncio.ensure_future(consume())
    await stream.put(1)
    assert await results.get() == 10  # no second item needed to push the first one out
    stream.close()
    await consumer

"""api/inference/batcher.py: concurrent requests merge into batches; results go to the right caller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest
from nexpo.api.inference.batcher import BatcherClosed, MicroBatcher
from nexpo.api.inference.registry import F32, Layer, MlpModel


def _model() -> MlpModel:
    layer = Layer(np.eye(2, dtype=np.float32), np.zeros(2, np.float32), "softmax")
    return MlpModel("echo", (layer,), ("a", "b"))


class Recorder:
    """Runs the batch function inline (the real service uses a worker thread) and records shapes."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.rows: list[int] = []
        self.delay = delay
        self.fail = fail
        self.started = asyncio.Event()

    async def __call__(self, fn: Callable[[F32], F32], x: F32, *, cost: int) -> F32:
        self.rows.append(x.shape[0])
        self.started.set()
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("kernel failed")
        return x * 10  # identifies each row's own result


async def test_concurrent_requests_are_merged_and_split_back() -> None:
    runner = Recorder(delay=0.01)
    batcher = MicroBatcher(_model(), runner, max_batch_size=64, max_wait_s=0.005, max_concurrent=1)
    batcher.start()
    inputs = [np.full((1 + i % 3, 2), i, np.float32) for i in range(40)]
    results = await asyncio.gather(*(batcher.infer(x) for x in inputs))
    for x, y in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(y, x * 10)
    assert sum(runner.rows) == sum(x.shape[0] for x in inputs)
    assert len(runner.rows) < len(inputs) / 4  # merged
    assert max(runner.rows) <= 64
    await batcher.close()


async def test_batches_never_exceed_max_rows_except_a_single_big_request() -> None:
    runner = Recorder()
    batcher = MicroBatcher(_model(), runner, max_batch_size=4, max_wait_s=0.002, max_concurrent=2)
    batcher.start()
    await asyncio.gather(*(batcher.infer(np.ones((3, 2), np.float32)) for _ in range(6)))
    assert all(rows <= 4 for rows in runner.rows)
    await batcher.infer(np.ones((9, 2), np.float32))  # larger than a batch: runs alone
    assert runner.rows[-1] == 9
    await batcher.close()


async def test_failure_reaches_every_caller_of_the_batch() -> None:
    batcher = MicroBatcher(
        _model(), Recorder(fail=True), max_batch_size=8, max_wait_s=0.002, max_concurrent=1
    )
    batcher.start()
    results = await asyncio.gather(
        *(batcher.infer(np.ones((1, 2), np.float32)) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    await batcher.close()


async def test_cancelled_callers_are_dropped_and_close_rejects_new_work() -> None:
    runner = Recorder(delay=0.05)
    batcher = MicroBatcher(_model(), runner, max_batch_size=8, max_wait_s=0.0, max_concurrent=1)
    batcher.start()
    first = asyncio.create_task(batcher.infer(np.ones((1, 2), np.float32)))
    await runner.started.wait()  # first is running (its slot taken); the next one queues
    doomed = asyncio.create_task(batcher.infer(np.ones((5, 2), np.float32)))
    await asyncio.sleep(0)
    doomed.cancel()
    await first
    await asyncio.sleep(0.06)  # time for another batch, had the cancelled request been kept
    assert 5 not in runner.rows
    await batcher.close()
    with pytest.raises(BatcherClosed):
        await batcher.infer(np.ones((1, 2), np.float32))

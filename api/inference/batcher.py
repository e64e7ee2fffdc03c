"""Dynamic micro-batching: concurrent requests to one model become one matmul batch.

::

    infer(x) ──► pending deque ──► collector ──(slot free)──► one batch ──► worker thread
                 (request, future)   waits ≤ max_wait for      concat rows    model.forward
                                     up to max_batch rows      ◄── split rows, resolve futures

The collector takes a slot (at most ``max_concurrent`` batches run at once, one per core) *before*
it gathers requests: while every slot is busy, requests pile up and the next batch takes them all.
A lone request waits at most ``max_wait`` for company. Requests whose caller gave up (timeout,
disconnect) are dropped before they are run. A batch runs through the gateway's ``run`` (a worker
thread unless its ``forward_cost`` is below the inline limit).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from prometheus_client import Histogram

from nexpo.metrics import REGISTRY

from .registry import F32

BATCH_ROWS = Histogram(
    "nexpo_inference_batch_rows",
    "Rows per executed inference batch",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
    registry=REGISTRY,
)
QUEUE_WAIT = Histogram(
    "nexpo_inference_queue_wait_seconds",
    "Time a request waited for its batch to start",
    ["model"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    registry=REGISTRY,
)


class Runner(Protocol):
    """Runs a batch's forward pass, inline or in a worker thread by its ``cost`` (``Gateway.run``)."""

    def __call__(self, fn: Callable[[F32], F32], x: F32, /, *, cost: int) -> Awaitable[F32]: ...


# After each batch: its rows, the summed queue time of its requests, its compute time (seconds).
BatchObserver = Callable[[int, float, float], None]


class BatchModel(Protocol):
    """What a batcher runs: an ``MlpModel`` or any model whose rows are independent."""

    @property
    def name(self) -> str: ...

    def forward(self, x: F32) -> F32: ...

    def forward_cost(self, rows: int) -> int:
        """Bytes a forward pass of ``rows`` reads and writes (``Gateway.run``'s ``cost``)."""
        ...


class BatcherClosed(RuntimeError):
    """The batcher is shutting down and takes no more requests."""


@dataclass(slots=True)
class _Request:
    x: F32
    future: asyncio.Future[F32]
    enqueued: float


class MicroBatcher:
    def __init__(
        self,
        model: BatchModel,
        run: Runner,
        *,
        max_batch_size: int,
        max_wait_s: float,
        max_concurrent: int,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self.model = model
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self._pending: deque[_Request] = deque()
        self._pending_rows = 0
        self._wake = asyncio.Event()
        self._wake_at_rows = (
            1  # pending rows that wake the collector: 1 when idle, a full batch while filling
        )
        self._slots = asyncio.Semaphore(max_concurrent)
        self._running: set[asyncio.Task[None]] = set()
        self._collector: asyncio.Task[None] | None = None
        self._closed = False
        self._rows_metric = BATCH_ROWS.labels(model.name)
        self._wait_metric = QUEUE_WAIT.labels(model.name)
        self._on_batch = on_batch

    def start(self) -> None:
        self._collector = asyncio.get_running_loop().create_task(
            self._collect(), name=f"batcher-{self.model.name}"
        )

    async def infer(self, x: F32) -> F32:
        """Probabilities for ``x`` (validated by the caller), computed inside some merged batch."""
        if self._closed:
            raise BatcherClosed("the service is shutting down")
        future: asyncio.Future[F32] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(x, future, time.perf_counter()))
        self._pending_rows += x.shape[0]
        if self._pending_rows >= self._wake_at_rows:  # no wake-up per request while a batch fills
            self._wake.set()
        return await future

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()
            while not self._pending:
                self._wake_at_rows = 1
                self._wake.clear()
                await self._wake.wait()
            if self._pending_rows < self.max_batch_size and self.max_wait_s > 0:
                # Fill until the batch is full or max_wait passes: one timer, one wake-up.
                self._wake_at_rows = self.max_batch_size
                self._wake.clear()
                timer = loop.call_later(self.max_wait_s, self._wake.set)
                await self._wake.wait()
                timer.cancel()
            batch = self._take()
            if not batch:
                self._slots.release()
                continue
            task = loop.create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _take(self) -> list[_Request]:
        batch: list[_Request] = []
        rows = 0
        while self._pending:
            head = self._pending[0]
            n = head.x.shape[0]
            if batch and rows + n > self.max_batch_size:
                break
            self._pending.popleft()
            self._pending_rows -= n
            if head.future.done():  # the caller gave up while queued
                continue
            batch.append(head)
            rows += n
        return batch

    async def _execute(self, batch: list[_Request]) -> None:
        try:
            started = time.perf_counter()
            for request in batch:
                self._wait_metric.observe(started - request.enqueued)
            x = batch[0].x if len(batch) == 1 else np.concatenate([r.x for r in batch])
            self._rows_metric.observe(x.shape[0])
            y = await self._run(self.model.forward, x, cost=self.model.forward_cost(x.shape[0]))
            if self._on_batch is not None:
                queued = sum(started - request.enqueued for request in batch)
                self._on_batch(x.shape[0], queued, time.perf_counter() - started)
            offset = 0
            for request in batch:
                n = request.x.shape[0]
                if not request.future.done():
                    request.future.set_result(y[offset : offset + n])
                offset += n
        except BaseException as exc:
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(
                        exc if isinstance(exc, Exception) else BatcherClosed("cancelled")
                    )
            if not isinstance(exc, Exception):
                raise
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Stop taking requests, finish running batches, fail whatever is still queued."""
        self._closed = True
        if self._collector is not None:
            self._collector.cancel()
            await asyncio.gather(self._collector, return_exceptions=True)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        while self._pending:
            request = self._pending.popleft()
            if not request.future.done():
                request.future.set_exception(BatcherClosed("the service is shutting down"))
        self._pending_rows = 0

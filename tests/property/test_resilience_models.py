"""Hypothesis: streams' drop policies, restart intensity and backoff against simple models."""

from __future__ import annotations

import asyncio
import random
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from nexpo._actors.policy import Backoff, Intensity
from nexpo.streams import BLOCK, DROP_NEWEST, DROP_OLDEST, Policy, Stream

_OPS = st.lists(st.one_of(st.integers(0, 1000), st.none()), max_size=60)  # int: put, None: get


@settings(max_examples=150, deadline=None)
@given(maxsize=st.integers(1, 6), policy=st.sampled_from(list(Policy)), ops=_OPS)
def test_stream_matches_a_bounded_deque_model(maxsize: int, policy: Policy, ops: list[int | None]) -> None:
    async def run() -> None:
        stream: Stream[int] = Stream(maxsize=maxsize, policy=policy, name=None)
        model: deque[int] = deque()
        dropped = accepted = 0
        for op in ops:
            if op is None:
                if model:
                    assert await stream.get() == model.popleft()
                continue
            if len(model) < maxsize:
                model.append(op)
                accepted += 1
                assert stream.put_nowait(op)
            elif policy is DROP_NEWEST:
                dropped += 1
                assert not stream.put_nowait(op)
            elif policy is DROP_OLDEST:
                model.popleft()
                model.append(op)
                dropped += 1
                accepted += 1
                assert stream.put_nowait(op)
            else:
                assert policy is BLOCK
                try:
                    stream.put_nowait(op)
                except asyncio.QueueFull:
                    pass
                else:
                    raise AssertionError("a full BLOCK stream accepted an item without waiting")
            assert len(stream) == len(model)
        stream.close()
        assert [item async for item in stream] == list(model)
        assert (stream.items, stream.dropped) == (accepted, dropped)

    asyncio.run(run())


@settings(max_examples=200, deadline=None)
@given(
    max_restarts=st.integers(0, 5),
    period=st.floats(0.5, 20),
    gaps=st.lists(st.floats(0, 10), min_size=1, max_size=30),
)
def test_intensity_counts_restarts_within_the_sliding_window(
    max_restarts: int, period: float, gaps: list[float]
) -> None:
    now = 0.0
    times: list[float] = []
    intensity = Intensity(max_restarts, period, lambda: now)
    for gap in gaps:
        now += gap
        times.append(now)
        within = sum(1 for t in times if t > now - period)
        assert intensity.allow() == (within <= max_restarts)


@settings(max_examples=200, deadline=None)
@given(
    params=st.tuples(st.floats(0, 1), st.floats(1, 4), st.floats(0, 10), st.floats(0, 1)),
    attempt=st.integers(1, 5000),
    seed=st.integers(0, 2**32 - 1),
)
def test_backoff_is_bounded_and_jitter_stays_within_its_band(
    params: tuple[float, float, float, float], attempt: int, seed: int
) -> None:
    initial, factor, cap, jitter = params
    backoff = Backoff(initial=initial, factor=factor, cap=cap, jitter=jitter)
    delay = backoff.delay(attempt, random.Random(seed))
    try:
        base = min(cap, initial * factor ** (attempt - 1))
    except OverflowError:
        base = cap
    assert 0 <= delay <= cap
    assert delay <= base * (1 + jitter) + 1e-9
    assert delay >= min(cap, base * (1 - jitter)) - 1e-9
    steady = Backoff(initial=initial, factor=factor, cap=cap, jitter=0)
    assert steady.delay(attempt) <= steady.delay(attempt + 1)

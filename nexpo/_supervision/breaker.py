"""``CircuitBreaker``: stop calling what keeps failing, then probe it again after a while.

    CLOSED --failure_threshold consecutive failures--> OPEN --reset_timeout elapsed--> HALF_OPEN
    HALF_OPEN --success_threshold successes--> CLOSED;   HALF_OPEN --any failure--> OPEN

Properties:
- In OPEN every call fails fast with CircuitOpen; HALF_OPEN admits at most
  ``half_open_max_calls`` trial calls at a time, the rest are rejected like in OPEN.
- Only exceptions matching ``failure_types`` count as failures; others pass through as
  successes of the dependency (a ValueError from bad input says nothing about its health).
- Time comes from ``clock`` (seconds, monotonic), so tests drive transitions with a fake clock.
"""

from __future__ import annotations

import enum
import functools
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

from nexpo import _stats
from nexpo.errors import CircuitOpen

P = ParamSpec("P")
R = TypeVar("R")


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


_CODES = {CircuitState.CLOSED: 0, CircuitState.OPEN: 1, CircuitState.HALF_OPEN: 2}


class CircuitBreaker:
    def __init__(
        self,
        name: str = "default",
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 30.0,
        success_threshold: int = 1,
        half_open_max_calls: int = 1,
        failure_types: type[BaseException] | tuple[type[BaseException], ...] = Exception,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for value, what in (
            (failure_threshold, "failure_threshold"),
            (success_threshold, "success_threshold"),
            (half_open_max_calls, "half_open_max_calls"),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be an int >= 1, got {value!r}")
        if not reset_timeout >= 0:
            raise ValueError(f"reset_timeout must be >= 0 seconds, got {reset_timeout!r}")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.success_threshold = success_threshold
        self.half_open_max_calls = half_open_max_calls
        self.failure_types = failure_types
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._successes = 0
        self._trials = 0
        self._opened_at = 0.0
        _stats.circuit_created(name, 0)

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name} {self.state.value}>"

    @property
    def state(self) -> CircuitState:
        """The current state; OPEN turns HALF_OPEN here once reset_timeout has elapsed."""
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.reset_timeout:
            self._move(CircuitState.HALF_OPEN)
        return self._state

    def _move(self, new: CircuitState) -> None:
        old = self._state
        self._state = new
        self._failures = 0
        self._successes = 0
        self._trials = 0
        if new is CircuitState.OPEN:
            self._opened_at = self._clock()
        _stats.circuit_transition(self.name, old.value, new.value, _CODES[new])

    # -- the protocol a guarded call follows -------------------------------------------------------

    def acquire(self) -> None:
        """Admit one call or raise CircuitOpen. Pair with ``record_success``/``record_failure``."""
        state = self.state
        if state is CircuitState.CLOSED:
            return
        if state is CircuitState.HALF_OPEN and self._trials < self.half_open_max_calls:
            self._trials += 1
            return
        retry = max(0.0, self.reset_timeout - (self._clock() - self._opened_at))
        raise CircuitOpen(f"circuit {self.name!r} is {state.value}; retry in {retry:.3g}s")

    def record_success(self) -> None:
        if self._state is CircuitState.HALF_OPEN:
            self._trials = max(0, self._trials - 1)
            self._successes += 1
            if self._successes >= self.success_threshold:
                self._move(CircuitState.CLOSED)
        elif self._state is CircuitState.CLOSED:
            self._failures = 0

    def record_failure(self) -> None:
        if self._state is CircuitState.HALF_OPEN:
            self._move(CircuitState.OPEN)
        elif self._state is CircuitState.CLOSED:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._move(CircuitState.OPEN)

    def reset(self) -> None:
        """Force CLOSED (an operator's override)."""
        if self._state is not CircuitState.CLOSED:
            self._move(CircuitState.CLOSED)
        self._failures = 0

    # -- async context manager and decorator ----------------------------------------------------------

    async def __aenter__(self) -> CircuitBreaker:
        self.acquire()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and isinstance(exc, self.failure_types):
            self.record_failure()
        elif exc is None or isinstance(exc, Exception):
            self.record_success()
        elif self._state is CircuitState.HALF_OPEN:
            self._trials = max(0, self._trials - 1)  # cancelled trial: free its slot, judge nothing

    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Decorate an async function so every call goes through the breaker."""

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            async with self:
                return await fn(*args, **kwargs)

        return guarded

"""Restart types, restart intensity and backoff: the rules a supervisor decides with."""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class Restart(enum.Enum):
    """When a child that exited is restarted (Erlang/OTP ``restart`` of a child spec)."""

    PERMANENT = "permanent"  # always
    TRANSIENT = "transient"  # only after an abnormal exit (an exception)
    TEMPORARY = "temporary"  # never

    def wants_restart(self, reason: BaseException | None) -> bool:
        if self is Restart.PERMANENT:
            return True
        return self is Restart.TRANSIENT and reason is not None


class Intensity:
    """At most ``max_restarts`` restarts within any ``period`` seconds (OTP's MaxR/MaxT)."""

    def __init__(self, max_restarts: int, period: float, clock: Callable[[], float]) -> None:
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be an int >= 0, got {max_restarts!r}")
        if not period > 0:
            raise ValueError(f"period must be > 0 seconds, got {period!r}")
        self.max_restarts = max_restarts
        self.period = period
        self._clock = clock
        self._times: deque[float] = deque()

    def allow(self) -> bool:
        """Record one restart; False when it exceeds the intensity (the supervisor must give up)."""
        now = self._clock()
        times = self._times
        times.append(now)
        while times and times[0] <= now - self.period:
            times.popleft()
        return len(times) <= self.max_restarts

    @property
    def recent(self) -> int:
        """Restarts recorded within the current window (1 = the first restart)."""
        return len(self._times)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff before a restart: ``initial * factor**(n-1)``, jittered, capped at ``cap``.

    ``n`` counts the restarts within the current intensity window, so a child that stays up for a
    whole ``period`` starts again from ``initial``. ``jitter`` is relative (0.2 = ±20%) and spreads
    restarts of many children that failed together.
    """

    initial: float = 0.01
    factor: float = 2.0
    cap: float = 5.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not self.initial >= 0:
            raise ValueError(f"initial must be >= 0, got {self.initial!r}")
        if not self.factor >= 1:
            raise ValueError(f"factor must be >= 1, got {self.factor!r}")
        if not self.cap >= 0:
            raise ValueError(f"cap must be >= 0, got {self.cap!r}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter!r}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before restart number ``attempt`` (1-based)."""
        try:
            base = min(self.cap, self.initial * self.factor ** max(attempt - 1, 0))
        except OverflowError:  # a long crash loop: factor**attempt left the float range
            base = self.cap
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, min(self.cap, base * (1.0 + spread)))

"""Checks for the seconds the actor API accepts (ask timeouts, stop grace periods, delays).

A NaN or infinite number of seconds is never what the caller meant: NaN compares false with
everything, so one NaN deadline in a shared timer heap would hide every deadline behind it.
They are rejected where they enter, with the name of the argument.
"""

from __future__ import annotations

import math
import numbers


def check_seconds(value: object, name: str, *, allow_zero: bool = True) -> float:
    """``value`` as a finite float >= 0 (> 0 unless ``allow_zero``); TypeError or ValueError
    naming ``name`` otherwise. Callers handle None (their default) before calling."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound} seconds, got {value!r}")
    return seconds


def check_optional_seconds(value: object, name: str, *, allow_zero: bool = True) -> float | None:
    """Like ``check_seconds``, with None (no bound, or the caller's default) passed through."""
    return None if value is None else check_seconds(value, name, allow_zero=allow_zero)

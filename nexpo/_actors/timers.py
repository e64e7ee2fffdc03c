"""``Timer``: a scheduled self-message of one actor instance."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nexpo._actors.cell import Cell


class Timer:
    """A scheduled self-message; cancelled automatically when the actor instance stops."""

    __slots__ = ("_cell", "_handle", "_interval", "_message", "_runtime")

    def __init__(self, cell: Cell, message: Any, interval: float | None, *, runtime: bool = False) -> None:
        self._cell = cell
        self._message = message
        self._interval = interval
        # A runtime message (a supervisor's restart retry) must not be lost to a full mailbox:
        # it is posted like a ChildExit; a user's message becomes a dead letter instead.
        self._runtime = runtime
        self._handle: asyncio.TimerHandle | None = None

    def _arm(self, delay: float) -> None:
        self._handle = self._cell.loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        cell = self._cell
        if self._interval is None:
            cell.timers.discard(self)
            self._handle = None
        else:
            self._arm(self._interval)
        if self._runtime:
            cell.post(self._message)
        else:
            cell.deliver(self._message, "timer: mailbox full")

    @property
    def active(self) -> bool:
        return self._handle is not None

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._cell.timers.discard(self)

"""``CellHost``: the few things a ``Cell`` needs from whoever runs it (the ``ActorSystem``).

A cell talks to this protocol, not to the whole system: the event loop it runs on, the shared
ask deadlines, whether to time messages, where dead letters go and whom to tell when it closes.
What happens when an incarnation ends on its own is not the host's business either: each cell
carries an ``ExitHook`` set by whoever created it (the system for a top-level actor, a
supervisor's ``ChildHandle`` for a child).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from nexpo._actors.cell import Cell
    from nexpo._actors.deadlines import Deadlines
    from nexpo._actors.messages import DeadLetter

# Called as ``hook(cell, incarnation, reason)`` when an incarnation ended without anyone asking
# it to (a failure, a normal exit, a failed start); ``reason`` is None for a normal exit.
ExitHook = Callable[["Cell", int, "BaseException | None"], None]


class CellHost(Protocol):
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def deadlines(self) -> Deadlines: ...

    @property
    def timing(self) -> bool: ...

    @property
    def loop_thread(self) -> int: ...

    def record_dead_letter(self, letter: DeadLetter) -> None: ...

    def unregister(self, cell: Cell) -> None: ...

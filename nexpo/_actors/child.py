"""``ChildHandle``: what a supervisor holds for each child, instead of the child's ``Cell``.

A supervisor decides; the handle carries the decision out: start or restart an incarnation and
wait for its ``on_start``, stop the running incarnation (keeping the child for a restart), or
remove the child for good. When an incarnation ends on its own the handle posts ``ChildExit`` to
the parent's mailbox (regardless of its capacity: an exit is never lost), or, if the parent has
stopped for good already, closes the child: nobody is left to restart it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nexpo._actors.cell import Cell
    from nexpo._actors.ref import ActorRef


@dataclass(frozen=True, slots=True)
class ChildExit:
    """Posted to a supervisor when one incarnation of its child ended on its own."""

    child: ChildHandle
    incarnation: int
    reason: BaseException | None


class ChildHandle:
    __slots__ = ("_cell", "_parent", "restarts")

    def __init__(self, cell: Cell, parent: Cell) -> None:
        self._cell = cell
        self._parent = parent
        self.restarts = 0  # restarts of this child (its class's metric counts them too)
        cell.on_exit = self._exited

    def __repr__(self) -> str:
        return f"<ChildHandle {self._cell.name}>"

    @property
    def ref(self) -> ActorRef:
        return self._cell.ref

    @property
    def name(self) -> str:
        return self._cell.name

    @property
    def removed(self) -> bool:
        """True once the child stopped for good (``remove``, or ``system.stop`` on its ref)."""
        return self._cell.closed

    def is_current(self, incarnation: int) -> bool:
        """Whether ``incarnation`` (from a ChildExit) is still the latest one: an exit posted
        before a restart or a removal is stale."""
        return not self._cell.closed and incarnation == self._cell.incarnation

    async def start(self) -> BaseException | None:
        """Start the first incarnation; None once its ``on_start`` returned, else why it failed."""
        return await self._cell.start_instance(None)

    async def restart(self, cause: BaseException | None) -> BaseException | None:
        """Start a new incarnation after ``cause`` (``on_restart(cause)``), counted as a restart.
        A start that fails posts its own ChildExit, like any exit."""
        self.restarts += 1
        self._cell.stats.restarts += 1
        return await self._cell.start_instance(cause)

    async def stop(self, grace: float | None) -> None:
        """Stop the running incarnation, if any, and wait for it (cancelled after ``grace``
        seconds). No ChildExit follows: the supervisor asked for it."""
        await self._cell.stop_instance(grace)

    def remove(self, reason: BaseException | None) -> None:
        """Stop for good: queued messages are dead-lettered, pending asks fail, watchers are told."""
        self._cell.close(reason)

    def _exited(self, cell: Cell, incarnation: int, reason: BaseException | None) -> None:
        if self._parent.closed:
            cell.close(reason)
        else:
            self._parent.post(ChildExit(self, incarnation, reason))

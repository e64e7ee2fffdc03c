"""``Actor``: subclass it, implement ``receive``; the runtime calls the hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, cast

from nexpo._actors.policy import Restart
from nexpo._actors.timeouts import check_seconds
from nexpo._actors.timers import Timer

if TYPE_CHECKING:
    from nexpo._actors.cell import Cell
    from nexpo._actors.ref import ActorRef
    from nexpo._actors.system import ActorSystem


class Actor:
    """Base class of actors. State lives on the instance; one message is processed at a time.

    Hooks, all optional:
    - ``on_start()``: before the first message.
    - ``on_stop()``: after the last message of this instance (stop, failure or restart).
    - ``on_restart(exc)``: replaces ``on_start`` on an instance created by a restart caused by
      ``exc``; by default it calls ``on_start()``.
    - ``snapshot()`` / ``restore(state)``: when ``snapshot`` returns something other than None as
      an instance ends, the next instance gets it through ``restore`` before ``on_restart``.
    """

    # Restart type for actors spawned directly on the system (no supervisor above them).
    top_level_restart: ClassVar[Restart] = Restart.TRANSIENT
    _nexpo_cell: Cell

    async def receive(self, message: Any) -> Any:
        """Handle one message; the return value is the reply to an ``ask``."""
        raise TypeError(f"{type(self).__qualname__} must implement `async def receive(self, message)`")

    async def on_start(self) -> None:
        return None

    async def on_stop(self) -> None:
        return None

    async def on_restart(self, exc: BaseException) -> None:
        await self.on_start()

    def snapshot(self) -> Any:
        return None

    def restore(self, state: Any) -> None:
        return None

    # -- services the runtime offers the running instance ------------------------------------

    @property
    def _cell(self) -> Cell:
        try:
            return self._nexpo_cell
        except AttributeError:
            raise RuntimeError(
                f"{type(self).__qualname__} is not running: create actors with ActorSystem.spawn"
            ) from None

    @property
    def ref(self) -> ActorRef:
        return self._cell.ref

    @property
    def system(self) -> ActorSystem:
        # A cell sees its host only as a CellHost; the one host there is, is the ActorSystem.
        return cast("ActorSystem", self._cell.host)

    @property
    def name(self) -> str:
        return self._cell.name

    def stop(self) -> None:
        """Stop after the current message (a normal exit)."""
        self._cell.request_stop()

    def schedule_once(self, delay: float, message: Any) -> Timer:
        """Tell ``message`` to this actor after ``delay`` seconds, unless it stopped by then."""
        return self._schedule(delay, message, None)

    def schedule_every(self, interval: float, message: Any, *, initial_delay: float | None = None) -> Timer:
        """Tell ``message`` to this actor every ``interval`` seconds while this instance runs."""
        interval = check_seconds(interval, "interval", allow_zero=False)
        if initial_delay is not None:
            initial_delay = check_seconds(initial_delay, "initial_delay")
        return self._schedule(interval if initial_delay is None else initial_delay, message, interval)

    def _schedule(
        self, delay: float, message: Any, interval: float | None, *, runtime: bool = False
    ) -> Timer:
        """(``runtime``: the message bypasses the mailbox capacity, see ``Timer``; for actors the
        runtime itself provides, like ``Supervisor``.)"""
        delay = check_seconds(delay, "delay")
        cell = self._cell
        if cell.actor is not self:
            raise RuntimeError("timers can only be scheduled by the running actor instance")
        timer = Timer(cell, message, interval, runtime=runtime)
        cell.timers.add(timer)
        timer._arm(delay)
        return timer

"""``ActorRef``: the address of an actor, and the tell / send / ask paths into its mailbox.

The ask path fails fast and never hangs: every way an actor can end while an ask waits (a stop,
a failure, a cancellation, an actor that ignores its cancellation, a shutdown) resolves the
reply future; see ``Cell`` for where.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from nexpo._actors.messages import Ask, DeadLetter
from nexpo._actors.timeouts import check_seconds
from nexpo.errors import ActorDeadlock, ActorStopped, MailboxFull, PendingLimitExceeded

if TYPE_CHECKING:
    from nexpo._actors.cell import Cell

_INF = float("inf")
_PLAIN_NUMBER = (float, int)  # (not bool: type(True) is bool)


class ActorRef:
    """The address of an actor: the only way to talk to it. Valid across restarts."""

    __slots__ = ("_cell",)

    def __init__(self, cell: Cell) -> None:
        self._cell = cell

    @property
    def name(self) -> str:
        return self._cell.name

    @property
    def alive(self) -> bool:
        """False once the actor stopped for good (restarts keep it alive)."""
        return not self._cell.closed

    @property
    def mailbox_size(self) -> int:
        return len(self._cell.queue)

    def __repr__(self) -> str:
        state = "alive" if not self._cell.closed else "stopped"
        return f"<ActorRef {self._cell.name} {state}>"

    async def started(self) -> None:
        """Wait until the actor's ``on_start`` returned (for a Supervisor: until its children
        started). Waits through restarts; raises ActorStopped (caused by the last failure) once
        it stopped for good, e.g. because ``on_start`` kept failing."""
        cell = self._cell
        while True:
            started = cell.started
            if cell.closed:
                raise ActorStopped(f"actor {cell.name!r} is stopped") from cell.exit_reason
            if started is None:
                raise ActorStopped(f"actor {cell.name!r} was never started")
            error = await asyncio.shield(started)
            if cell.started is started:
                if error is not None:
                    raise error
                return
            # restarted meanwhile: wait for the new incarnation

    def tell(self, message: Any) -> None:
        """Queue ``message`` and return at once. Raises MailboxFull when the mailbox is full;
        a message to a stopped actor becomes a dead letter."""
        cell = self._cell
        queue = cell.queue
        if len(queue) >= cell.limit:
            if cell.closed:
                cell.dead_letter(message, "stopped")
                return
            raise MailboxFull(f"mailbox of {cell.name!r} is full ({cell.capacity} messages)")
        queue.append(message)
        waiter = cell.waiter
        if waiter is not None:
            cell.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def send(self, message: Any) -> None:
        """Queue ``message``, waiting while the mailbox is full (backpressure)."""
        cell = self._cell
        while not cell.closed and len(cell.queue) >= cell.capacity:
            room = cell.loop.create_future()
            cell.senders.append(room)
            try:
                await room
            except BaseException:
                if room.done() and not room.cancelled():
                    cell._wake_sender()  # pass the room we were given on to the next sender
                raise
        self.tell(message)

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:  # noqa: ASYNC109 (the API)
        """Send ``message`` and wait for what ``receive`` returns (or raises).

        TimeoutError after ``timeout`` seconds (None waits forever; NaN, infinite or negative is a
        ValueError); ActorStopped when the actor stops, is cancelled or is abandoned before it
        replied, or the system shuts down; ActorDeadlock when an actor asks itself;
        PendingLimitExceeded when the actor already has ``max_pending_asks`` unanswered asks;
        MailboxFull when its mailbox is full.
        """
        if timeout is not None and not (type(timeout) in _PLAIN_NUMBER and 0 <= timeout < _INF):
            timeout = check_seconds(timeout, "timeout")  # a number within range skips the call
        cell = self._cell
        if cell.closed:
            cell.dead_letter(message, "stopped")
            raise ActorStopped(f"actor {cell.name!r} is stopped")
        task = cell.task
        if task is not None and asyncio.current_task() is task:
            raise ActorDeadlock(f"actor {cell.name!r} asked itself: it cannot reply while it waits")
        if cell.pending_asks >= cell.max_pending:
            raise PendingLimitExceeded(f"actor {cell.name!r} has {cell.pending_asks} unanswered asks")
        queue = cell.queue
        if len(queue) >= cell.capacity:
            raise MailboxFull(f"mailbox of {cell.name!r} is full ({cell.capacity} messages)")
        future: asyncio.Future[Any] = cell.loop.create_future()
        if timeout is not None:
            cell.deadlines.add(future, timeout, cell.name)
        queue.append(Ask(message, future))
        waiter = cell.waiter
        if waiter is not None:
            cell.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        cell.pending_asks += 1
        try:
            return await future
        finally:
            cell.pending_asks -= 1

    def tell_threadsafe(self, message: Any) -> None:
        """``tell`` from any thread. It cannot raise MailboxFull to a caller that has moved on, so a
        full mailbox (or a closed event loop) turns the message into a dead letter."""
        cell = self._cell
        if threading.get_ident() == cell.host.loop_thread:
            cell.deliver(message, "mailbox full")
            return
        try:
            cell.loop.call_soon_threadsafe(cell.deliver, message, "mailbox full")
        except RuntimeError:  # the loop is closed
            cell.stats.dead_letters += 1
            cell.host.record_dead_letter(DeadLetter(cell.name, message, "event loop closed"))

    def stop(self) -> None:
        """Ask the actor to stop after its current message. A supervised PERMANENT child is then
        restarted (as in OTP); use ``await system.stop(ref)`` to remove an actor for good."""
        if not self._cell.closed:
            self._cell.request_stop()

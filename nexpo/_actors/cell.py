"""The mailbox, message loop and lifecycle of one actor (users hold its ``ActorRef``, ref.py).

A ``Cell`` outlives the actor instances it runs: a restart replaces the instance (a new
"incarnation") but keeps the ref, the name and the queued messages, as in Akka.

    tell/ask ──append──► deque ──popleft──► receive(msg)          one asyncio task per incarnation
                 │                    ▲
                 └─ waiter.set_result ┘  (only when the loop is parked on an empty mailbox)

Properties:
- No task or queue machinery per message: a tell is a bounds check, ``deque.append`` and, only if
  the actor is idle, resolving one future. The loop drains the deque without yielding between
  messages unless ``receive`` itself awaits.
- Asks carry a future; an asker that timed out or was cancelled leaves a done future behind, which
  the loop skips, so late replies never raise.
- ``processed`` counts messages handled without an exception; ``failures`` the others.
- A failure in ``receive`` for a tell ends the incarnation (logged, counted, then handed to the
  cell's ``on_exit`` hook: the system's top-level policy, or a ``ChildHandle`` that tells the
  parent supervisor). A failure for an ask goes to the asker and is counted; the actor keeps
  running.
- The cell knows its host only through ``CellHost`` (host.py): loop, deadlines, timing, dead
  letters, unregistering.
- No ask outlives its actor: the ask being handled (``in_flight``) fails with ActorStopped when
  the task ends otherwise (cancelled after a stop overran its grace period, KeyboardInterrupt...)
  or is abandoned because it swallowed its cancellation; queued asks fail with ActorStopped when
  the actor stops for good (``close``) and are kept for the next incarnation across a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from nexpo import _stats
from nexpo._actors.messages import STOP, Ask, DeadLetter, Terminated
from nexpo._actors.ref import ActorRef
from nexpo._actors.timers import Timer
from nexpo.errors import ActorDeadlock, ActorStopped

if TYPE_CHECKING:
    from nexpo._actors.actor import Actor
    from nexpo._actors.host import CellHost, ExitHook

log = logging.getLogger("nexpo.actors")

UNBOUNDED = 1 << 62
_COMMIT_EVERY = 256
# After cancelling a stop that overran its grace period, wait at least this long (else the grace
# period again) for the task to end before abandoning it: a well-behaved task ends at its next step.
_CANCEL_FLOOR = 0.1
# Raised by `receive`, these end the actor's task instead of counting as its failure.
_ENDS_THE_TASK = (KeyboardInterrupt, SystemExit, GeneratorExit)


def stop_for_good(cell: Cell, incarnation: int, reason: BaseException | None) -> None:
    """The default ``ExitHook``: nobody decides what comes next, so the actor stays stopped."""
    cell.close(reason)


class Cell:
    """Mailbox + lifecycle of one actor. Internal: users hold an ``ActorRef``."""

    __slots__ = (
        "__weakref__",
        "actor",
        "capacity",
        "closed",
        "deadlines",
        "directed",
        "exit_reason",
        "factory",
        "host",
        "in_flight",
        "incarnation",
        "last_state",
        "limit",
        "loop",
        "max_pending",
        "name",
        "on_exit",
        "pending_asks",
        "queue",
        "ref",
        "senders",
        "started",
        "stats",
        "task",
        "timers",
        "waiter",
        "watchers",
    )  # fmt: skip

    def __init__(
        self,
        host: CellHost,
        factory: Callable[[], Actor],
        name: str,
        stats: _stats.ActorClassStats,
        *,
        capacity: int,
        max_pending: int,
    ) -> None:
        self.host = host
        self.loop = host.loop
        self.deadlines = host.deadlines
        self.factory = factory
        self.name = name
        self.stats = stats
        self.capacity = capacity
        self.max_pending = max_pending
        # What happens when an incarnation ends on its own; set by whoever created the cell.
        self.on_exit: ExitHook = stop_for_good
        self.queue: deque[Any] = deque()
        self.senders: deque[asyncio.Future[None]] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.timers: set[Timer] = set()
        self.watchers: list[ActorRef] = []
        self.actor: Actor | None = None
        self.task: asyncio.Task[None] | None = None
        self.started: asyncio.Future[BaseException | None] | None = None
        self.incarnation = 0
        self.pending_asks = 0
        self.in_flight: asyncio.Future[Any] | None = None  # reply future of the ask being handled
        self.limit = capacity  # capacity while open, -1 once closed: one compare on the tell path
        self.directed = False
        self.closed = False
        self.exit_reason: BaseException | None = None
        self.last_state: Any = None
        self.ref = ActorRef(self)
        stats.live.add(self)

    def __repr__(self) -> str:
        return f"<Cell {self.name}>"

    # -- delivery ---------------------------------------------------------------------------

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def post(self, message: Any) -> None:
        """Enqueue a runtime message (Terminated, ChildExit, stop) regardless of capacity."""
        if self.closed:
            self.dead_letter(message, "stopped")
            return
        self.queue.append(message)
        self.wake()

    def deliver(self, message: Any, full_reason: str) -> None:
        """Tell without raising: a full mailbox or a stopped actor turns it into a dead letter."""
        if self.closed:
            self.dead_letter(message, "stopped")
        elif len(self.queue) >= self.capacity:
            self.dead_letter(message, full_reason)
        else:
            self.queue.append(message)
            self.wake()

    def dead_letter(self, message: Any, reason: str) -> None:
        if isinstance(message, Ask):
            if not message.future.done():
                message.future.set_exception(ActorStopped(f"actor {self.name!r} stopped before replying"))
            message = message.message
        self.stats.dead_letters += 1
        self.host.record_dead_letter(DeadLetter(self.name, message, reason))

    def _wake_sender(self) -> None:
        senders = self.senders
        while senders:
            sender = senders.popleft()
            if not sender.done():
                sender.set_result(None)
                return

    # -- lifecycle --------------------------------------------------------------------------

    def start_instance(self, cause: BaseException | None) -> asyncio.Future[BaseException | None]:
        """Begin a new incarnation; the future resolves with None once on_start (or on_restart)
        returned, or with the exception that made it fail."""
        started: asyncio.Future[BaseException | None] = self.loop.create_future()
        if self.closed:  # stopped for good (e.g. `system.stop` on a supervised child)
            started.set_result(ActorStopped(f"actor {self.name!r} is stopped"))
            return started
        self.incarnation += 1
        self.directed = False
        self.started = started
        self.task = self.loop.create_task(self._incarnate(cause, self.incarnation), name=f"actor:{self.name}")
        return started

    async def stop_instance(self, grace: float | None = None, *, drain: bool = False) -> None:
        """Stop the running incarnation (after its current message) and wait for on_stop. Nobody is
        notified: the caller decides what happens next. A stop that overruns ``grace`` seconds is
        cancelled, like OTP's brutal kill; a task still running ``grace`` seconds (at least
        _CANCEL_FLOOR) after that swallowed its cancellation and is abandoned (``_abandon``)."""
        task = self.task
        if task is None or task.done():
            return
        if task is asyncio.current_task():
            raise ActorDeadlock(f"actor {self.name!r} cannot wait for its own stop: call self.stop()")
        self.directed = True
        if drain:
            self.queue.append(STOP)
        else:
            self.queue.appendleft(STOP)
        self.wake()
        # asyncio.wait neither raises what the task raised nor cancels it when the caller is.
        done, _ = await asyncio.wait((task,), timeout=grace)
        if done:
            return
        assert grace is not None
        log.warning("actor %s did not stop within %ss: cancelled", self.name, grace)
        task.cancel()
        done, _ = await asyncio.wait((task,), timeout=max(grace, _CANCEL_FLOOR))
        if not done:
            self._abandon(grace)

    def _abandon(self, grace: float) -> None:
        """The actor swallowed its cancellation: stop waiting for it. Its asker and queued asks
        fail, it is closed for good (never restarted: a second loop on the same mailbox would
        race the first), and if ``receive`` ever returns, the orphaned loop meets STOP and ends."""
        log.error(
            "actor %s ignored its cancellation for %ss: abandoned (its task keeps running)",
            self.name, max(grace, _CANCEL_FLOOR),
        )  # fmt: skip
        why = "ignored its cancellation and was abandoned"
        reason = ActorStopped(f"actor {self.name!r} {why}")
        self.fail_in_flight(None, why)
        if self.started is not None and not self.started.done():  # stuck in on_start
            self.started.set_result(reason)
        self.close(reason)
        self.queue.append(STOP)

    def fail_in_flight(self, cause: BaseException | None, why: str = "stopped") -> None:
        """Fail the ask being handled, if any, with ActorStopped: its handler will never reply."""
        future = self.in_flight
        self.in_flight = None
        if future is not None and not future.done():
            error = ActorStopped(f"actor {self.name!r} {why} while handling this ask")
            error.__cause__ = cause
            future.set_exception(error)

    def request_stop(self) -> None:
        """A normal exit after the current message (supervisors apply the child's restart type)."""
        self.queue.appendleft(STOP)
        self.wake()

    async def _incarnate(self, cause: BaseException | None, incarnation: int) -> None:
        started = self.started
        assert started is not None
        actor: Actor | None = None
        try:
            try:
                actor = self.factory()
                if not callable(getattr(actor, "receive", None)) or not hasattr(actor, "on_start"):
                    raise TypeError(f"the factory of {self.name!r} returned {actor!r}, not an Actor")
                actor._nexpo_cell = self
                self.actor = actor
                if cause is None:
                    await actor.on_start()
                else:
                    if self.last_state is not None:
                        actor.restore(self.last_state)
                    await actor.on_restart(cause)
            except Exception as exc:
                log.error("actor %s failed to start", self.name, exc_info=exc)
                self.stats.failures += 1
                if not started.done():
                    started.set_result(exc)
                if self.actor is not None:
                    await self._stop_hooks(self.actor)
                self._exited(exc, incarnation)
                return
            if not started.done():  # (done: abandoned while starting, see _abandon)
                started.set_result(None)
            reason = await self._run(actor, self.host.timing)
            try:
                self.last_state = actor.snapshot()
            except Exception as exc:
                log.error("actor %s: snapshot() failed; restarting without state", self.name, exc_info=exc)
                self.last_state = None
            await self._stop_hooks(actor)
            self._exited(reason, incarnation)
        except BaseException as exc:
            # Cancelled (a stop that overran its grace period, or a cancellation from outside, e.g.
            # the event loop being torn down), or KeyboardInterrupt / SystemExit / GeneratorExit:
            # the ask being handled fails now, not at its deadline (it may have none).
            self.fail_in_flight(exc)
            if not self.directed:
                # Nobody here asked for it, so nobody will decide what comes next: stop for good
                # (queued asks fail, watchers are told) rather than restart on a loop going away.
                self.close(exc)
            raise
        finally:
            # Also when cancelled (a stop that overran its grace period): no timer outlives the
            # instance, and nobody waits forever for a start that will never finish.
            self.in_flight = None
            for timer in list(self.timers):
                timer.cancel()
            self.actor = None
            if not started.done():
                started.set_result(asyncio.CancelledError(f"actor {self.name!r} cancelled while starting"))

    async def _stop_hooks(self, actor: Actor) -> None:
        for timer in list(self.timers):
            timer.cancel()
        self.actor = None
        try:
            await actor.on_stop()
        except Exception as exc:
            log.error("actor %s: on_stop failed", self.name, exc_info=exc)
            self.stats.failures += 1

    def _failed(self, exc: BaseException) -> bool:
        """Whether ``exc`` raised by ``receive`` is the actor's failure, handled like any exception
        (an ask's asker gets it; a tell ends the incarnation). Not when it must end the task: this
        task's own cancellation, KeyboardInterrupt, SystemExit, GeneratorExit."""
        if isinstance(exc, asyncio.CancelledError):
            task = self.task
            return task is None or not task.cancelling()
        return not isinstance(exc, _ENDS_THE_TASK)

    def _exited(self, reason: BaseException | None, incarnation: int) -> None:
        if not self.directed:  # (a directed stop: the caller decides what comes next)
            self.on_exit(self, incarnation, reason)

    def close(self, reason: BaseException | None) -> None:
        """Final stop: dead-letter the mailbox, fail pending asks, tell watchers. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.limit = -1
        self.exit_reason = reason
        self.host.unregister(self)
        self.stats.live.discard(self)
        queue = self.queue
        while queue:
            message = queue.popleft()
            if message is not STOP:
                self.dead_letter(message, "stopped")
        while self.senders:
            self._wake_sender()
        self.wake()
        for watcher in self.watchers:
            watcher._cell.post(Terminated(self.ref, reason))
        self.watchers.clear()

    # -- the message loop ----------------------------------------------------------------------
    # Counts are kept in locals and committed to the class stats when the mailbox runs dry, every
    # _COMMIT_EVERY messages and on exit: attribute writes on a shared object cost more than the
    # loop's own work. Timing is decided once per incarnation (``timed``, a local): with it the
    # loop reads the clock once per message, and a message's processing time is the time since
    # the previous one finished (or since the loop woke up), so the times of a run of back-to-back
    # messages sum to ``last - run_start``, added once per commit. Without it, ``last`` and
    # ``run_start`` stay 0 and nothing is timed: one local test per message is all it costs.

    async def _run(self, actor: Actor, timed: bool) -> BaseException | None:
        queue = self.queue
        popleft = queue.popleft
        senders = self.senders
        receive = actor.receive
        stats = self.stats
        slots = stats.log2_slots
        create_future = self.loop.create_future
        ask_type = Ask
        stop = STOP
        clock = perf_counter_ns
        processed = 0
        run_start = last = clock() if timed else 0
        try:
            while True:
                if not queue:
                    stats.processed += processed
                    stats.nanos += last - run_start
                    processed = 0
                    self.in_flight = None  # (not per message: keeps no reply alive while idle)
                    waiter = self.waiter = create_future()
                    await waiter
                    if timed:
                        run_start = last = clock()
                    continue
                message = popleft()
                if senders:
                    self._wake_sender()
                if type(message) is ask_type:
                    future = message.future
                    if future.done():
                        continue
                    self.in_flight = future
                    try:
                        result = await receive(message.message)
                    except BaseException as exc:
                        if not self._failed(exc):
                            raise
                        stats.failures += 1
                        if not future.done():
                            future.set_exception(exc)
                        if timed:  # a failed ask is not timed
                            stats.nanos += last - run_start
                            run_start = last = clock()
                        continue
                    if not future.done():
                        future.set_result(result)
                elif message is stop:
                    return None
                else:
                    try:
                        await receive(message)
                    except BaseException as exc:
                        if not self._failed(exc):
                            raise
                        stats.failures += 1
                        log.error("actor %s failed on %.200r", self.name, message, exc_info=exc)
                        return exc
                if timed:
                    now = clock()
                    slots[(now - last - 1).bit_length()] += 1
                    last = now
                processed += 1
                if processed >= _COMMIT_EVERY:
                    stats.processed += processed
                    stats.nanos += last - run_start
                    processed = 0
                    run_start = last
        finally:
            stats.processed += processed
            stats.nanos += last - run_start

"""The mailbox, message loop and lifecycle of one actor, and ``ActorRef``, the handle to it.

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
  parent supervisor or the system's top-level policy). A failure for an ask goes to the asker and
  is counted; the actor keeps running.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

from nexpo import _stats
from nexpo._actors.messages import STOP, Ask, ChildExit, DeadLetter, Terminated
from nexpo._actors.policy import Intensity, Restart
from nexpo.errors import ActorDeadlock, ActorStopped, MailboxFull, PendingLimitExceeded

if TYPE_CHECKING:
    from nexpo._actors.actor import Actor
    from nexpo._actors.system import ActorSystem

log = logging.getLogger("nexpo.actors")

UNBOUNDED = 1 << 62
_COMMIT_EVERY = 256


class Timer:
    """A scheduled self-message; cancelled automatically when the actor instance stops."""

    __slots__ = ("_cell", "_handle", "_interval", "_message")

    def __init__(self, cell: Cell, message: Any, interval: float | None) -> None:
        self._cell = cell
        self._message = message
        self._interval = interval
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
        cell.deliver(self._message, "timer: mailbox full")

    @property
    def active(self) -> bool:
        return self._handle is not None

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._cell.timers.discard(self)


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
        "incarnation",
        "intensity",
        "last_state",
        "limit",
        "loop",
        "max_pending",
        "name",
        "parent",
        "pending_asks",
        "queue",
        "ref",
        "restart",
        "senders",
        "started",
        "stats",
        "system",
        "task",
        "timers",
        "waiter",
        "watchers",
    )  # fmt: skip

    def __init__(
        self,
        system: ActorSystem,
        factory: Callable[[], Actor],
        name: str,
        stats: _stats.ActorClassStats,
        *,
        capacity: int,
        max_pending: int,
        parent: Cell | None,
        restart: Restart,
        intensity: Intensity | None,
    ) -> None:
        self.system = system
        self.loop = system.loop
        self.deadlines = system.deadlines
        self.factory = factory
        self.name = name
        self.stats = stats
        self.capacity = capacity
        self.max_pending = max_pending
        self.parent = parent
        self.restart = restart
        self.intensity = intensity
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
        self.system.record_dead_letter(DeadLetter(self.name, message, reason))

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
        cancelled, like OTP's brutal kill."""
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
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(task)
        except TimeoutError:
            log.warning("actor %s did not stop within %ss: cancelled", self.name, grace)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

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
            started.set_result(None)
            if self.system.timing:
                reason = await self._loop_timed(actor)
            else:
                reason = await self._loop_plain(actor)
            try:
                self.last_state = actor.snapshot()
            except Exception as exc:
                log.error("actor %s: snapshot() failed; restarting without state", self.name, exc_info=exc)
                self.last_state = None
            await self._stop_hooks(actor)
            self._exited(reason, incarnation)
        finally:
            # Also when cancelled (a stop that overran its grace period): no timer outlives the
            # instance, and nobody waits forever for a start that will never finish.
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
        """Whether ``exc`` raised by ``receive`` is the actor's failure. A CancelledError is one,
        unless this task really is being cancelled (then it must propagate)."""
        if isinstance(exc, asyncio.CancelledError):
            task = self.task
            return task is None or not task.cancelling()
        return True

    def _exited(self, reason: BaseException | None, incarnation: int) -> None:
        if self.directed:
            return
        if self.parent is None:
            self.system.top_level_exited(self, reason)
        elif self.parent.closed:
            self.close(reason)
        else:
            self.parent.post(ChildExit(self, incarnation, reason))

    def close(self, reason: BaseException | None) -> None:
        """Final stop: dead-letter the mailbox, fail pending asks, tell watchers. Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.limit = -1
        self.exit_reason = reason
        self.system.unregister(self)
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

    # -- the message loops: one with processing-time metrics, one without --------------------
    # Counts are kept in locals and committed to the class stats when the mailbox runs dry, every
    # _COMMIT_EVERY messages and on exit: attribute writes on a shared object cost more than the
    # loop's own work. The timed loop reads the clock once per message: a message's processing
    # time is the time since the previous one finished (or since the loop woke up).

    async def _loop_timed(self, actor: Actor) -> BaseException | None:
        # Processing times chain: each message's time is `now - last`, so their sum over a run
        # of back-to-back messages is `last - run_start`, added once per commit, not per message.
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
        run_start = last = clock()
        try:
            while True:
                if not queue:
                    stats.processed += processed
                    stats.nanos += last - run_start
                    processed = 0
                    waiter = self.waiter = create_future()
                    await waiter
                    run_start = last = clock()
                    continue
                message = popleft()
                if senders:
                    self._wake_sender()
                if type(message) is ask_type:
                    future = message.future
                    if future.done():
                        continue
                    try:
                        result = await receive(message.message)
                    except (Exception, asyncio.CancelledError) as exc:
                        if not self._failed(exc):
                            raise
                        stats.failures += 1
                        if not future.done():
                            future.set_exception(exc)
                        stats.nanos += last - run_start  # a failed ask is not timed
                        run_start = last = clock()
                        continue
                    if not future.done():
                        future.set_result(result)
                elif message is stop:
                    return None
                else:
                    try:
                        await receive(message)
                    except (Exception, asyncio.CancelledError) as exc:
                        if not self._failed(exc):
                            raise
                        stats.failures += 1
                        log.error("actor %s failed on %.200r", self.name, message, exc_info=exc)
                        return exc
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

    async def _loop_plain(self, actor: Actor) -> BaseException | None:
        queue = self.queue
        popleft = queue.popleft
        senders = self.senders
        receive = actor.receive
        stats = self.stats
        create_future = self.loop.create_future
        ask_type = Ask
        stop = STOP
        processed = 0
        try:
            while True:
                if not queue:
                    stats.processed += processed
                    processed = 0
                    waiter = self.waiter = create_future()
                    await waiter
                    continue
                message = popleft()
                if senders:
                    self._wake_sender()
                if type(message) is ask_type:
                    future = message.future
                    if future.done():
                        continue
                    try:
                        result = await receive(message.message)
                    except (Exception, asyncio.CancelledError) as exc:
                        if not self._failed(exc):
                            raise
                        stats.failures += 1
                        if not future.done():
                            future.set_exception(exc)
                        continue
                    if not future.done():
                        future.set_result(result)
                elif message is stop:
                    return None
                else:
                    try:
                        await receive(message)
                    except (Exception, asyncio.CancelledError) as exc:
                        if not self._failed(exc):
                            raise
                        stats.failures += 1
                        log.error("actor %s failed on %.200r", self.name, message, exc_info=exc)
                        return exc
                processed += 1
                if processed >= _COMMIT_EVERY:
                    stats.processed += processed
                    processed = 0
        finally:
            stats.processed += processed


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

        TimeoutError after ``timeout`` seconds (None waits forever); ActorStopped when the actor
        stops first; ActorDeadlock when an actor asks itself; PendingLimitExceeded when the actor
        already has ``max_pending_asks`` unanswered asks; MailboxFull when its mailbox is full.
        """
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
        queue.append(Ask(message, future))
        waiter = cell.waiter
        if waiter is not None:
            cell.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if timeout is not None:
            cell.deadlines.add(future, timeout, cell.name)
        cell.pending_asks += 1
        try:
            return await future
        finally:
            cell.pending_asks -= 1

    def tell_threadsafe(self, message: Any) -> None:
        """``tell`` from any thread. It cannot raise MailboxFull to a caller that has moved on, so a
        full mailbox (or a closed event loop) turns the message into a dead letter."""
        cell = self._cell
        if threading.get_ident() == cell.system.loop_thread:
            cell.deliver(message, "mailbox full")
            return
        try:
            cell.loop.call_soon_threadsafe(cell.deliver, message, "mailbox full")
        except RuntimeError:  # the loop is closed
            cell.stats.dead_letters += 1
            cell.system.record_dead_letter(DeadLetter(cell.name, message, "event loop closed"))

    def stop(self) -> None:
        """Ask the actor to stop after its current message. A supervised PERMANENT child is then
        restarted (as in OTP); use ``await system.stop(ref)`` to remove an actor for good."""
        if not self._cell.closed:
            self._cell.request_stop()

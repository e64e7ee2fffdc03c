"""``ActorSystem``: spawns actors, names them, watches them, and shuts everything down."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from nexpo import _stats
from nexpo._actors.cell import UNBOUNDED, Cell
from nexpo._actors.child import ChildHandle
from nexpo._actors.deadlines import Deadlines
from nexpo._actors.messages import DeadLetter, Terminated
from nexpo._actors.policy import Intensity, Restart
from nexpo._actors.ref import ActorRef
from nexpo._actors.timeouts import check_optional_seconds, check_seconds

if TYPE_CHECKING:
    from nexpo._actors.actor import Actor

log = logging.getLogger("nexpo.actors")


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


class _TopLevelExit:
    """The ``on_exit`` hook of a top-level actor: its restart type and intensity, applied by the
    system. (A slotted object: ~200 bytes per actor less than a functools.partial.)"""

    __slots__ = ("intensity", "restart", "system")

    def __init__(self, system: ActorSystem, restart: Restart, intensity: Intensity) -> None:
        self.system = system
        self.restart = restart
        self.intensity = intensity

    def __call__(self, cell: Cell, incarnation: int, reason: BaseException | None) -> None:
        self.system._top_level_exited(cell, self.restart, self.intensity, reason)


class ActorSystem:
    """Owns a set of actors on one event loop. Use it as ``async with ActorSystem() as system:``.

    (It is the ``CellHost`` of every cell it creates: see host.py for the part cells use.)

    Actors spawned here directly (not under a ``Supervisor``) follow ``Actor.top_level_restart``
    (TRANSIENT by default: restarted after a failure, at most ``max_restarts`` times within
    ``period`` seconds, then stopped for good and their watchers told).

    Metrics: counts (messages, failures, restarts, dead letters, mailbox depth) are always kept;
    ``timing=True`` also reads the clock once per message (~0.15 µs) for the
    ``nexpo_actor_processing_seconds`` histogram. ``metrics_interval``: seconds between pushes
    to Prometheus (None: only when ``nexpo.metrics`` is scraped or flushed).

    ``shutdown_timeout``: seconds a stop (``stop``, ``shutdown``) may take per actor before the
    actor is cancelled; one that still has not ended that long after (at least 0.1 s) swallowed
    its cancellation and is abandoned with an error log, so a stop always returns.
    """

    def __init__(
        self,
        *,
        timing: bool = True,
        metrics_interval: float | None = 1.0,
        max_restarts: int = 3,
        period: float = 5.0,
        dead_letter_buffer: int = 1000,
        shutdown_timeout: float = 5.0,
    ) -> None:
        Intensity(max_restarts, period, lambda: 0.0)  # validates both
        self.timing = bool(timing)
        self.metrics_interval = check_optional_seconds(metrics_interval, "metrics_interval", allow_zero=False)
        self.max_restarts = max_restarts
        self.period = period
        self.shutdown_timeout = check_seconds(shutdown_timeout, "shutdown_timeout")
        self.dead_letter_count = 0
        buffer = _check_positive_int(dead_letter_buffer, "dead_letter_buffer")
        self._dead_letters: deque[DeadLetter] = deque(maxlen=buffer)
        self._names: dict[str, Cell] = {}
        self._top: dict[Cell, None] = {}  # insertion-ordered set
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.deadlines: Deadlines  # bound with the loop
        self.loop_thread = -1
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False

    # -- context management -------------------------------------------------------------------

    async def __aenter__(self) -> ActorSystem:
        self._bind_loop()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._bind_loop()
        assert self._loop is not None
        return self._loop

    def _bind_loop(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self.deadlines = Deadlines(self._loop)
        self.loop_thread = threading.get_ident()
        if self.metrics_interval is not None:
            self._flusher = self._loop.create_task(self._flush_periodically(self.metrics_interval))

    async def _flush_periodically(self, interval: float) -> None:
        from nexpo.metrics import flush  # imported lazily: the hot path needs no prometheus

        while True:
            await asyncio.sleep(interval)
            try:
                flush()
            except Exception:
                log.exception("pushing actor metrics to Prometheus failed")

    # -- spawning and naming --------------------------------------------------------------------

    def spawn(
        self,
        factory: Callable[..., Actor],
        *args: Any,
        name: str | None = None,
        mailbox: int | None = 1000,
        max_pending_asks: int = 1000,
        restart: Restart | None = None,
        **kwargs: Any,
    ) -> ActorRef:
        """Create ``factory(*args, **kwargs)`` (an Actor subclass or a callable returning an Actor)
        and start it. Returns at once; messages wait in the mailbox until ``on_start`` returned.
        ``mailbox``: capacity (None = unbounded). ``restart``: overrides the class's
        ``top_level_restart``."""
        if restart is None:
            restart = getattr(factory, "top_level_restart", Restart.TRANSIENT)
        if not isinstance(restart, Restart):
            raise TypeError(f"restart must be a Restart, not {type(restart).__name__}")
        cell = self._create_cell(
            factory, args, kwargs, name=name, mailbox=mailbox, max_pending_asks=max_pending_asks, child=False
        )
        cell.on_exit = _TopLevelExit(self, restart, Intensity(self.max_restarts, self.period, self.loop.time))
        self._top[cell] = None
        cell.start_instance(None)
        return cell.ref

    def create_child(
        self,
        parent: ActorRef,
        factory: Callable[..., Actor],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        mailbox: int | None = 1000,
        max_pending_asks: int = 1000,
    ) -> ChildHandle:
        """Register a child of ``parent`` without starting it, and return the handle its parent
        (a supervisor) starts, stops and restarts it with; its exits go to ``parent``'s mailbox
        as ``ChildExit``. Arguments as in ``spawn``."""
        if not isinstance(parent, ActorRef):
            raise TypeError(f"parent must be an ActorRef, not {type(parent).__name__}")
        cell = self._create_cell(
            factory, args, kwargs or {}, name=name, mailbox=mailbox, max_pending_asks=max_pending_asks,
            child=True,
        )  # fmt: skip
        return ChildHandle(cell, parent._cell)

    def _create_cell(
        self,
        factory: Callable[..., Actor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        name: str | None,
        mailbox: int | None,
        max_pending_asks: int,
        child: bool,
    ) -> Cell:
        if self._closed or (self._closing and not child):
            # (a supervisor still starting when shutdown began may add children: it stops them
            # again right after)
            raise RuntimeError("the actor system is shut down")
        if not callable(factory):
            raise TypeError(f"factory must be an Actor subclass or a callable, not {type(factory).__name__}")
        capacity = UNBOUNDED if mailbox is None else _check_positive_int(mailbox, "mailbox")
        _check_positive_int(max_pending_asks, "max_pending_asks")
        label = factory if isinstance(factory, type) else type(factory)
        if name is None:
            name = f"{getattr(factory, '__name__', 'actor')}-{next(self._ids)}"
        elif not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        if name in self._names:
            raise ValueError(f"an actor named {name!r} is already running")
        bound: Callable[[], Actor] = (lambda: factory(*args, **kwargs)) if (args or kwargs) else factory
        stats = _stats.actor_class(label)
        cell = Cell(self, bound, name, stats, capacity=capacity, max_pending=max_pending_asks)
        self._names[name] = cell
        return cell

    def lookup(self, name: str) -> ActorRef | None:
        """The running actor called ``name``, or None."""
        cell = self._names.get(name)
        return cell.ref if cell is not None else None

    def unregister(self, cell: Cell) -> None:
        if self._names.get(cell.name) is cell:
            del self._names[cell.name]
        self._top.pop(cell, None)

    @property
    def actors(self) -> list[ActorRef]:
        """Every running actor, in spawn order."""
        return [cell.ref for cell in self._names.values()]

    # -- watching, dead letters -------------------------------------------------------------------

    def watch(self, ref: ActorRef, watcher: ActorRef) -> None:
        """``watcher`` receives ``Terminated(ref, reason)`` once ``ref`` stops for good."""
        for value, what in ((ref, "ref"), (watcher, "watcher")):
            if not isinstance(value, ActorRef):
                raise TypeError(f"{what} must be an ActorRef, not {type(value).__name__}")
        cell = ref._cell
        if cell.closed:
            watcher._cell.post(Terminated(ref, cell.exit_reason))
        elif watcher not in cell.watchers:
            cell.watchers.append(watcher)

    def unwatch(self, ref: ActorRef, watcher: ActorRef) -> None:
        watchers = ref._cell.watchers
        if watcher in watchers:
            watchers.remove(watcher)

    def record_dead_letter(self, letter: DeadLetter) -> None:
        self.dead_letter_count += 1
        self._dead_letters.append(letter)
        log.debug("dead letter to %s (%s): %.200r", letter.recipient, letter.reason, letter.message)

    @property
    def dead_letters(self) -> list[DeadLetter]:
        """The most recent dead letters (``dead_letter_buffer`` of them); ``dead_letter_count``
        counts all."""
        return list(self._dead_letters)

    # -- failures of top-level actors ---------------------------------------------------------------

    def _top_level_exited(
        self, cell: Cell, restart: Restart, intensity: Intensity, reason: BaseException | None
    ) -> None:
        if self._closing or cell.closed or not restart.wants_restart(reason):
            cell.close(reason)
            return
        if not intensity.allow():
            log.error(
                "actor %s: more than %d restarts within %ss, stopping it",
                cell.name, self.max_restarts, self.period, exc_info=reason,
            )  # fmt: skip
            cell.close(reason)
            return
        cell.stats.restarts += 1
        cell.start_instance(reason)

    # -- stopping -----------------------------------------------------------------------------------

    async def stop(self, ref: ActorRef, *, drain: bool = False, grace: float | None = None) -> None:
        """Stop ``ref`` for good (no restart) and wait until it has. ``drain``: process what is
        already queued first; otherwise it is dead-lettered and queued asks fail with
        ActorStopped. A stop that takes longer than ``grace`` seconds (default
        ``shutdown_timeout``) is cancelled (the ask being handled fails with ActorStopped); an
        actor that swallows the cancellation is abandoned after another ``grace``."""
        grace = self.shutdown_timeout if grace is None else check_seconds(grace, "grace")
        if not isinstance(ref, ActorRef):
            raise TypeError(f"ref must be an ActorRef, not {type(ref).__name__}")
        cell = ref._cell
        if cell.closed:
            return
        await cell.stop_instance(grace, drain=drain)
        cell.close(None)

    async def shutdown(self, *, drain: bool = False, grace: float | None = None) -> None:
        """Stop every actor (newest top-level first; supervisors stop their children in reverse
        start order), dead-letter or (``drain``) process what is queued, and cancel leftovers, so
        no task of this system survives (except actors abandoned for swallowing their
        cancellation, see ``shutdown_timeout``). Every ask still waiting fails with
        ActorStopped. ``grace``: per actor, as in ``stop`` (default ``shutdown_timeout``)."""
        grace = self.shutdown_timeout if grace is None else check_seconds(grace, "grace")
        if self._closed:
            return
        self._closing = True
        try:
            for cell in reversed(list(self._top)):
                await self.stop(cell.ref, drain=drain, grace=grace)
            for cell in reversed(list(self._names.values())):  # orphans, if any
                await self.stop(cell.ref, drain=drain, grace=grace)
        finally:
            if self._flusher is not None:
                self._flusher.cancel()
                await asyncio.gather(self._flusher, return_exceptions=True)
                self._flusher = None
            self._closed = True
            if self._loop is not None:
                self.deadlines.close()
        if self.metrics_interval is not None:
            from nexpo.metrics import flush

            flush()

"""``Supervisor``: an actor that starts children, watches their exits and restarts them (OTP).

Ordering, as in Erlang/OTP's ``supervisor``:
- children start in spec order, each one's ``on_start`` finishing before the next begins;
- ONE_FOR_ONE restarts only the child that exited;
- ONE_FOR_ALL stops every other child in reverse start order, then restarts all in start order;
- REST_FOR_ONE does the same for the children started after the one that exited;
- a restart happens only when the exited child's restart type asks for it (PERMANENT always,
  TRANSIENT after an exception, TEMPORARY never; TEMPORARY siblings stopped by ONE_FOR_ALL or
  REST_FOR_ONE are not restarted either);
- more than ``max_restarts`` restarts within ``period`` seconds: the supervisor stops all its
  children (reverse start order) and fails with RestartIntensityExceeded, which its own parent
  handles like any child failure. That is how failures escalate up a tree;
- a restart delayed by ``backoff`` never blocks the supervisor: it posts itself a ``_Retry``
  for when the delay is over (like OTP's supervisor casting a retry to itself), so it keeps
  answering asks and handling other children's exits meanwhile. A retry whose child was
  restarted (by a sibling's ONE_FOR_ALL / REST_FOR_ONE round) or removed meanwhile is dropped.

Children are managed through ``ChildHandle`` (start, stop, restart, remove, ref): the
supervisor decides, the handle carries it out; neither cells nor the system's internals are
touched here.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nexpo._actors.actor import Actor
from nexpo._actors.child import ChildExit, ChildHandle
from nexpo._actors.policy import Backoff, Intensity, Restart
from nexpo._actors.ref import ActorRef
from nexpo._actors.timeouts import check_optional_seconds
from nexpo.errors import RestartIntensityExceeded

log = logging.getLogger("nexpo.supervision")


class Strategy(enum.Enum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


@dataclass(frozen=True)
class ChildSpec:
    """How to start (and restart) one child: ``factory(*args, **kwargs)`` must return an Actor
    (a Supervisor for a nested tree). ``shutdown``: seconds a stop may take before the child is
    cancelled (None: wait as long as it takes, e.g. for a nested supervisor)."""

    factory: Callable[..., Actor]
    name: str
    restart: Restart = Restart.PERMANENT
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    mailbox: int | None = 1000
    max_pending_asks: int = 1000
    shutdown: float | None = 5.0

    def __post_init__(self) -> None:
        if not callable(self.factory):
            raise TypeError(f"factory must be callable, not {type(self.factory).__name__}")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty str, got {self.name!r}")
        if not isinstance(self.restart, Restart):
            raise TypeError(f"restart must be PERMANENT, TRANSIENT or TEMPORARY, got {self.restart!r}")
        object.__setattr__(self, "shutdown", check_optional_seconds(self.shutdown, "shutdown"))


class _WhichChildren:
    __slots__ = ()

    def __repr__(self) -> str:
        return "WHICH_CHILDREN"


# Ask a supervisor for its running children: ``await sup.ask(WHICH_CHILDREN)`` -> [(name, ref)].
WHICH_CHILDREN = _WhichChildren()


class _Child:
    __slots__ = ("handle", "spec")

    def __init__(self, spec: ChildSpec, handle: ChildHandle) -> None:
        self.spec = spec
        self.handle = handle


class _Retry:
    """Posted by a supervisor to itself when a restart's backoff is over."""

    __slots__ = ("child", "incarnation", "reason")

    def __init__(self, child: ChildHandle, incarnation: int, reason: BaseException | None) -> None:
        self.child = child
        self.incarnation = incarnation  # the one that exited: the retry is stale once it changed
        self.reason = reason

    def __repr__(self) -> str:
        return f"<retry {self.child.name}>"


class Supervisor(Actor):
    """Spawn it like any actor: ``system.spawn(Supervisor, [ChildSpec(...), ...], strategy=...)``.

    ``backoff``: wait ``backoff.delay(n)`` before the n-th restart within the window (None:
    restart at once, as OTP does); the supervisor keeps handling messages while it waits.
    ``clock``: seconds for the intensity window (tests pass a fake).
    """

    # A top-level supervisor that gave up is not restarted by the system: its failure is final.
    top_level_restart = Restart.TEMPORARY

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        strategy: Strategy = Strategy.ONE_FOR_ONE,
        max_restarts: int = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        specs = list(children)
        for spec in specs:
            if not isinstance(spec, ChildSpec):
                raise TypeError(f"children must be ChildSpec instances, got {type(spec).__name__}")
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique, got {names}")
        if not isinstance(strategy, Strategy):
            raise TypeError(f"strategy must be a Strategy, not {type(strategy).__name__}")
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(f"backoff must be a Backoff or None, not {type(backoff).__name__}")
        self.specs = specs
        self.strategy = strategy
        self.backoff = backoff
        self.rng = rng
        self.intensity = Intensity(max_restarts, period, clock)
        self.children: list[_Child] = []

    # -- lifecycle ------------------------------------------------------------------------------

    async def on_start(self) -> None:
        for spec in self.specs:
            handle = self.system.create_child(
                self.ref, spec.factory, spec.args, dict(spec.kwargs), name=spec.name, mailbox=spec.mailbox,
                max_pending_asks=spec.max_pending_asks,
            )  # fmt: skip
            self.children.append(_Child(spec, handle))
            error = await handle.start()
            if error is not None:
                # OTP: a child that cannot start makes its supervisor fail to start.
                await self._terminate_all()
                raise error

    async def on_stop(self) -> None:
        await self._terminate_all()

    async def receive(self, message: Any) -> Any:
        if isinstance(message, ChildExit):
            await self._child_exited(message)
            return None
        if isinstance(message, _Retry):
            await self._retry(message)
            return None
        if message is WHICH_CHILDREN:
            self._forget_removed()
            return [(child.spec.name, child.handle.ref) for child in self.children]
        # Anything else (a Terminated from a watch, a stray tell) must not take the tree down.
        log.warning("supervisor %s ignored an unexpected message: %.200r", self.name, message)
        return None

    # -- deciding -------------------------------------------------------------------------------

    def _index_of(self, handle: ChildHandle) -> int | None:
        for index, child in enumerate(self.children):
            if child.handle is handle:
                return index
        return None

    def _forget_removed(self) -> None:
        """Drop children removed behind our back (``system.stop`` on a child's ref)."""
        if any(child.handle.removed for child in self.children):
            self.children = [child for child in self.children if not child.handle.removed]

    async def _child_exited(self, event: ChildExit) -> None:
        handle = event.child
        if handle.removed:
            self._forget_removed()
            return
        index = self._index_of(handle)
        if index is None or not handle.is_current(event.incarnation):
            return  # stale: the child was restarted or removed since it posted this
        child = self.children[index]
        if not child.spec.restart.wants_restart(event.reason):
            self.children.pop(index)
            handle.remove(event.reason)
            return
        if not self.intensity.allow():
            log.error(
                "supervisor %s: more than %d restarts within %ss, giving up",
                self.name, self.intensity.max_restarts, self.intensity.period,
            )  # fmt: skip
            await self._terminate_all()
            raise RestartIntensityExceeded(
                f"supervisor {self.name!r}: more than {self.intensity.max_restarts} restarts "
                f"within {self.intensity.period}s"
            ) from event.reason
        if self.backoff is not None:
            delay = self.backoff.delay(self.intensity.recent, self.rng)
            if delay > 0:
                # A runtime timer: posted whatever the mailbox holds, cancelled if we stop first.
                self._schedule(delay, _Retry(handle, event.incarnation, event.reason), None, runtime=True)
                return
        await self._restart(index, event.reason)

    async def _retry(self, retry: _Retry) -> None:
        if retry.child.removed:  # by `system.stop` while it waited
            self._forget_removed()
            return
        index = self._index_of(retry.child)
        if index is not None and retry.child.is_current(retry.incarnation):
            await self._restart(index, retry.reason)  # (else restarted by a sibling's round)

    async def _restart(self, index: int, reason: BaseException | None) -> None:
        """Restart the child at ``index`` and, per the strategy, its siblings."""
        child = self.children[index]
        if self.strategy is Strategy.ONE_FOR_ONE:
            group = [child]
        elif self.strategy is Strategy.ONE_FOR_ALL:
            group = list(self.children)
        else:
            group = self.children[index:]
        siblings = [member for member in group if member is not child]
        for member in reversed(siblings):
            await member.handle.stop(member.spec.shutdown)
        for member in group:
            if member.handle.removed:  # by `system.stop` meanwhile
                self.children.remove(member)
                continue
            if member is not child and member.spec.restart is Restart.TEMPORARY:
                self.children.remove(member)
                member.handle.remove(None)
                continue
            # A start failure posts its own ChildExit, handled (and counted) after this round.
            await member.handle.restart(reason)

    async def _terminate_all(self) -> None:
        """Stop every child for good, in reverse start order."""
        while self.children:
            child = self.children.pop()
            await child.handle.stop(child.spec.shutdown)
            child.handle.remove(None)

    @property
    def child_refs(self) -> list[ActorRef]:
        return [child.handle.ref for child in self.children if not child.handle.removed]

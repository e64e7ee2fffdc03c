"""The actor runtime's seams: a ``Cell`` runs on any ``CellHost`` (not only an ActorSystem), its
one message loop times messages only when the host asks for it, a supervisor's ``ChildHandle``,
and runtime timers that a full mailbox cannot lose."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from _actor_helpers import Probe, Recorder, Worker

from nexpo import _stats
from nexpo._actors.cell import Cell
from nexpo._actors.child import ChildExit
from nexpo._actors.deadlines import Deadlines
from nexpo._actors.host import CellHost
from nexpo._actors.messages import DeadLetter
from nexpo.actors import Actor, ActorSystem
from nexpo.errors import ActorStopped


class FakeHost:
    """Only what ``CellHost`` lists: if Cell needed more of the system, these tests would fail."""

    def __init__(self, *, timing: bool) -> None:
        self.loop = asyncio.get_running_loop()
        self.deadlines = Deadlines(self.loop)
        self.timing = timing
        self.loop_thread = threading.get_ident()
        self.letters: list[DeadLetter] = []
        self.unregistered: list[Cell] = []

    def record_dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)

    def unregister(self, cell: Cell) -> None:
        self.unregistered.append(cell)


class Echo(Actor):
    async def receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError(message)
        return message


def _cell(host: CellHost, factory: type[Actor] = Echo) -> Cell:
    return Cell(host, factory, "echo", _stats.actor_class(factory), capacity=8, max_pending=8)


async def test_a_cell_runs_on_a_host_that_only_has_the_protocol() -> None:
    host = FakeHost(timing=False)
    cell = _cell(host)
    assert await cell.start_instance(None) is None
    assert await cell.ref.ask("hi") == "hi"
    with pytest.raises(ValueError, match="boom"):
        await cell.ref.ask("boom")
    cell.ref.tell("boom")  # a failed tell ends the incarnation; the default hook stops for good
    with pytest.raises(ActorStopped):
        await cell.ref.ask("after", timeout=5)
    assert cell.closed and isinstance(cell.exit_reason, ValueError)
    assert host.unregistered == [cell]
    assert [letter.message for letter in host.letters] == ["after"]


@pytest.mark.parametrize("timing", [True, False])
async def test_the_loop_times_messages_only_when_the_host_asks(timing: bool) -> None:
    class Timed(Echo):
        pass

    stats = _stats.actor_class(Timed)
    processed, nanos, slots = stats.processed, stats.nanos, sum(stats.log2_slots)
    cell = _cell(FakeHost(timing=timing), Timed)
    await cell.start_instance(None)
    for i in range(5):
        cell.ref.tell(i)
    with pytest.raises(ValueError, match="boom"):
        await cell.ref.ask("boom")  # failed: counted as a failure, never timed
    assert await cell.ref.ask("last") == "last"
    await cell.stop_instance(5.0)
    assert stats.processed - processed == 6
    if timing:
        assert sum(stats.log2_slots) - slots == 6  # one histogram entry per processed message
        assert stats.nanos > nanos
    else:
        assert sum(stats.log2_slots) == slots and stats.nanos == nanos


async def test_a_child_handle_starts_restarts_stops_and_removes_its_child() -> None:
    recorder = Recorder()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    async with ActorSystem(metrics_interval=None) as system:
        parent = system.spawn(Probe, inbox)
        child = system.create_child(parent, Worker, ("w", recorder), name="w")
        assert system.lookup("w") is child.ref and child.name == "w"
        assert await child.start() is None
        assert child.is_current(1) and child.restarts == 0
        child.ref.tell("crash")  # an exit it did not ask for goes to the parent's mailbox
        exit_ = await asyncio.wait_for(inbox.get(), 5)
        assert isinstance(exit_, ChildExit) and exit_.child is child and exit_.incarnation == 1
        assert isinstance(exit_.reason, RuntimeError)
        assert await child.restart(exit_.reason) is None
        assert child.restarts == 1 and child.is_current(2) and not child.is_current(1)
        await child.stop(1.0)  # a stop the parent asked for: no ChildExit
        assert recorder.events == [("start", "w"), ("stop", "w"), ("start", "w"), ("stop", "w")]
        child.remove(None)
        assert child.removed and not child.ref.alive and not child.is_current(2)
        assert system.lookup("w") is None
        await asyncio.sleep(0)
        assert inbox.empty()


async def test_a_childs_exit_after_its_parent_stopped_closes_it() -> None:
    recorder = Recorder()
    async with ActorSystem(metrics_interval=None) as system:
        parent = system.spawn(Probe, asyncio.Queue())
        child = system.create_child(parent, Worker, ("w", recorder))
        await child.start()
        await system.stop(parent)
        child.ref.tell("exit")
        await recorder.wait_for(2)
        await asyncio.sleep(0)
        assert child.removed  # nobody is left to restart it
    with pytest.raises(TypeError, match="parent"):
        system.create_child("parent", Worker)  # type: ignore[arg-type]


async def test_a_runtime_timer_is_posted_into_a_full_mailbox_a_users_is_dead_lettered() -> None:
    armed, gate, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()
    seen: list[Any] = []

    class Busy(Actor):
        async def receive(self, message: Any) -> Any:
            if message == "arm":
                self._schedule(0.0, "retry", None, runtime=True)  # how a Supervisor retries
                self.schedule_once(0.0, "user")
                armed.set()
                await gate.wait()  # busy while the timers fire into a full mailbox
                return None
            if message == "done":
                finished.set()
                return None
            seen.append(message)
            return None

    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Busy, mailbox=1)
        ref.tell("arm")
        await armed.wait()
        # (the timers fire on the loop's next turn, after this task's: the mailbox is full then)
        ref.tell("fill")
        await asyncio.sleep(0.01)
        gate.set()
        await ref.send("done")  # (waits for room while the actor drains its mailbox)
        await asyncio.wait_for(finished.wait(), 5)
        assert seen == ["fill", "retry"]
        assert [(d.message, d.reason) for d in system.dead_letters] == [("user", "timer: mailbox full")]

"""nexpo.actors hardening (issue 15, item 8): no ask outlives its actor, no deadline can disable the
others, no actor can hang a stop or a shutdown.

Every test bounds its own waits with ``asyncio.timeout`` (and the module with pytest-timeout), so
a regression fails in seconds instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import pytest
from _actor_helpers import Recorder, Worker

from nexpo import _stats
from nexpo._actors.deadlines import Deadlines
from nexpo.actors import Actor, ActorStopped, ActorSystem, Terminated
from nexpo.supervision import ONE_FOR_ALL, WHICH_CHILDREN, ChildSpec, Supervisor

pytestmark = pytest.mark.timeout(30)

BOUND = 3.0  # seconds: far above what any of these should take, far below a hang


class Blocker(Actor):
    """Every message blocks on ``gate``; ``entered`` is set once a message is being handled."""

    def __init__(self, gate: asyncio.Event, entered: asyncio.Event) -> None:
        self.gate = gate
        self.entered = entered

    async def receive(self, message: Any) -> Any:
        self.entered.set()
        await self.gate.wait()
        return message


class Stubborn(Actor):
    """Swallows every cancellation while it waits for ``gate``."""

    def __init__(self, gate: asyncio.Event, entered: asyncio.Event) -> None:
        self.gate = gate
        self.entered = entered

    async def receive(self, message: Any) -> Any:
        self.entered.set()
        while not self.gate.is_set():
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                continue  # the bug under test: cancellation swallowed
        return message


class Fatal(BaseException):
    """Not an Exception: escapes ``except Exception`` in user code."""


class Escaper(Actor):
    async def receive(self, message: Any) -> Any:
        if message == "fatal":
            raise Fatal("beyond Exception")
        return message


def _blocked(system: ActorSystem, **spawn: Any) -> tuple[Any, asyncio.Event, asyncio.Event]:
    gate, entered = asyncio.Event(), asyncio.Event()
    return system.spawn(Blocker, gate, entered, **spawn), gate, entered


def _release_later(gate: asyncio.Event) -> asyncio.TimerHandle:
    """Lets a Stubborn actor finish after BOUND whatever happens: a regression that waits for it
    forever (and the loop's teardown, which would too) then fails instead of hanging."""
    return asyncio.get_running_loop().call_later(BOUND, gate.set)


def _only_current_task() -> bool:
    return asyncio.all_tasks() == {asyncio.current_task()}


# -- an ask whose actor ends while handling it ------------------------------------------------------


async def test_an_ask_in_flight_fails_at_once_when_its_stop_overruns_the_grace_period() -> None:
    async with ActorSystem(metrics_interval=None) as system:
        ref, _, entered = _blocked(system)
        pending = asyncio.ensure_future(ref.ask("stuck", timeout=None))
        queued = asyncio.ensure_future(ref.ask("queued", timeout=None))
        async with asyncio.timeout(BOUND):
            await entered.wait()
            await system.stop(ref, grace=0.01)
            with pytest.raises(ActorStopped, match="while handling") as info:
                await pending
            assert isinstance(info.value.__cause__, asyncio.CancelledError)
            with pytest.raises(ActorStopped):
                await queued
        assert not ref.alive and ref._cell.pending_asks == 0


async def test_shutdown_fails_an_ask_in_flight_even_one_with_a_deadline() -> None:
    system = ActorSystem(metrics_interval=None, shutdown_timeout=0.01)
    async with system:
        ref, _, entered = _blocked(system)
        pending = asyncio.ensure_future(ref.ask("stuck", timeout=5))
        await entered.wait()
    async with asyncio.timeout(BOUND):  # before the fix shutdown dropped the deadline: forever
        with pytest.raises(ActorStopped):
            await pending
    assert _only_current_task()


async def test_asks_queued_when_an_actor_stops_itself_fail_with_actor_stopped() -> None:
    class Quitter(Actor):
        async def receive(self, message: Any) -> Any:
            if message == "quit":
                self.stop()
            return message

    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Quitter)
        first = asyncio.ensure_future(ref.ask("quit"))
        behind = [asyncio.ensure_future(ref.ask(i, timeout=None)) for i in range(3)]
        async with asyncio.timeout(BOUND):
            assert await first == "quit"
            results = await asyncio.gather(*behind, return_exceptions=True)
        assert all(isinstance(r, ActorStopped) for r in results)
        assert not ref.alive


async def test_an_actor_cancelled_from_outside_stops_for_good_and_fails_its_asks() -> None:
    inbox: asyncio.Queue[Any] = asyncio.Queue()

    class Watcher(Actor):
        async def receive(self, message: Any) -> None:
            inbox.put_nowait(message)

    async with ActorSystem(metrics_interval=None) as system:
        ref, _, entered = _blocked(system)
        watcher = system.spawn(Watcher)
        system.watch(ref, watcher)
        pending = asyncio.ensure_future(ref.ask("stuck", timeout=None))
        queued = asyncio.ensure_future(ref.ask("queued", timeout=None))
        async with asyncio.timeout(BOUND):
            await entered.wait()
            task = ref._cell.task
            assert task is not None
            task.cancel()  # nobody of the system asked for it (as when a loop is torn down)
            with pytest.raises(ActorStopped):
                await pending
            with pytest.raises(ActorStopped):
                await queued
            terminated = await inbox.get()
        assert isinstance(terminated, Terminated) and terminated.ref is ref
        assert isinstance(terminated.reason, asyncio.CancelledError)
        assert not ref.alive and system.lookup(ref.name) is None


async def test_a_base_exception_from_receive_is_a_failure_not_a_silent_death() -> None:
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Escaper)
        async with asyncio.timeout(BOUND):
            with pytest.raises(Fatal):
                await ref.ask("fatal", timeout=None)  # before: the task died, the ask hung
            assert await ref.ask("still there") == "still there"
            ref.tell("fatal")  # as a tell: logged, counted, restarted like any failure
            assert await ref.ask("again") == "again"
        assert _stats.actor_class(Escaper).restarts == 1


# -- timeouts that are not numbers of seconds ------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -1.0, -1])
async def test_a_nan_infinite_or_negative_ask_timeout_is_a_value_error(bad: float) -> None:
    async with ActorSystem(metrics_interval=None) as system:
        ref, gate, _ = _blocked(system)
        async with asyncio.timeout(BOUND):
            with pytest.raises(ValueError, match="timeout"):
                await ref.ask("x", timeout=bad)
        assert ref.mailbox_size == 0 and ref._cell.pending_asks == 0 and system.dead_letter_count == 0
        gate.set()


@pytest.mark.parametrize("bad", ["1", True, object()])
async def test_an_ask_timeout_that_is_not_a_number_is_a_type_error(bad: Any) -> None:
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Escaper)
        with pytest.raises(TypeError, match="timeout"):
            await ref.ask("x", timeout=bad)
        assert ref.mailbox_size == 0
        assert await ref.ask("ok", timeout=1) == "ok"  # an int is fine


async def test_a_nan_ask_no_longer_stops_every_other_deadline() -> None:
    async with ActorSystem(metrics_interval=None) as system:
        ref, gate, _ = _blocked(system)
        async with asyncio.timeout(BOUND):
            with pytest.raises(ValueError, match="timeout"):
                await ref.ask("poison", timeout=math.nan)
            with pytest.raises(TimeoutError):
                await ref.ask("other", timeout=0.02)
        gate.set()


async def test_every_public_timeout_rejects_nan_infinite_and_negative() -> None:
    for bad in (math.nan, math.inf, -0.5):
        with pytest.raises(ValueError, match="shutdown_timeout"):
            ActorSystem(shutdown_timeout=bad)
        with pytest.raises(ValueError, match="metrics_interval"):
            ActorSystem(metrics_interval=bad)
        with pytest.raises(ValueError, match="shutdown"):
            ChildSpec(Escaper, "child", shutdown=bad)
    with pytest.raises(ValueError, match="metrics_interval"):
        ActorSystem(metrics_interval=0)
    assert ChildSpec(Escaper, "child", shutdown=None).shutdown is None  # None: no bound, as before

    class Scheduler(Actor):
        async def receive(self, message: Any) -> Any:
            delay, interval = message
            if interval is None:
                return self.schedule_once(delay, "tick")
            return self.schedule_every(interval, "tick")

    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Escaper)
        scheduler = system.spawn(Scheduler)
        for bad in (math.nan, math.inf, -0.5):
            with pytest.raises(ValueError, match="grace"):
                await system.stop(ref, grace=bad)
            with pytest.raises(ValueError, match="grace"):
                await system.shutdown(grace=bad)
            with pytest.raises(ValueError, match="delay"):
                await scheduler.ask((bad, None))
            with pytest.raises(ValueError, match="interval"):
                await scheduler.ask((0, bad))
        assert ref.alive  # nothing was stopped by a refused call


# -- the deadline heap on its own --------------------------------------------------------------------


class _BrokenFuture(asyncio.Future[Any]):
    def set_exception(self, exception: Any) -> None:
        raise RuntimeError("broken future")


async def test_a_deadline_whose_expiry_raises_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    broken: asyncio.Future[Any] = _BrokenFuture(loop=loop)
    later = loop.create_future()
    deadlines.add(broken, 0.0, "broken")
    deadlines.add(later, 0.02, "fine")
    with caplog.at_level(logging.ERROR, logger="nexpo.actors"):
        async with asyncio.timeout(BOUND):
            with pytest.raises(TimeoutError, match="'fine' timed out"):
                await later
    assert "ask deadline of 'broken'" in caplog.text
    deadlines.close()


async def test_a_nan_in_the_heap_is_expired_instead_of_hiding_the_deadlines_behind_it() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    with pytest.raises(ValueError, match="finite"):
        deadlines.add(loop.create_future(), math.nan, "nan")
    # Whatever got there, a NaN entry on top must not stall the timer.
    poisoned = loop.create_future()
    deadlines._heap.append((math.nan, -1, poisoned, "poisoned", math.nan))
    later = loop.create_future()
    deadlines.add(later, 0.02, "fine")
    async with asyncio.timeout(BOUND):
        with pytest.raises(TimeoutError):
            await later
    assert poisoned.done()
    deadlines.close()


async def test_closing_the_deadlines_fails_every_waiting_reply() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    waiting, answered = loop.create_future(), loop.create_future()
    deadlines.add(waiting, 60, "slow")
    deadlines.add(answered, 60, "quick")
    answered.set_result("done")
    deadlines.close()
    with pytest.raises(ActorStopped, match="shut down"):
        await waiting
    assert answered.result() == "done"


# -- an actor that swallows its cancellation ---------------------------------------------------------


async def test_an_actor_that_swallows_cancellation_is_abandoned_and_shutdown_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    release = _release_later(gate)
    system = ActorSystem(metrics_interval=None, shutdown_timeout=0.02)
    try:
        with caplog.at_level(logging.ERROR, logger="nexpo.actors"):
            async with system:
                ref = system.spawn(Stubborn, gate, entered, name="stubborn")
                pending = asyncio.ensure_future(ref.ask("stuck", timeout=None))
                queued = asyncio.ensure_future(ref.ask("queued", timeout=None))
                await entered.wait()
                stopping = asyncio.ensure_future(system.shutdown())
                done, _ = await asyncio.wait((stopping,), timeout=BOUND / 2)
                assert done, "shutdown hangs on an actor that swallows its cancellation"
            async with asyncio.timeout(BOUND):
                with pytest.raises(ActorStopped, match="abandoned"):
                    await pending
                with pytest.raises(ActorStopped):
                    await queued
        assert "actor stubborn ignored its cancellation" in caplog.text
        assert not ref.alive
    finally:
        release.cancel()
        gate.set()  # the abandoned task meets the STOP left for it and ends
    task = ref._cell.task
    assert task is not None
    async with asyncio.timeout(BOUND):
        await asyncio.wait((task,))
    assert _only_current_task()


# -- supervision ------------------------------------------------------------------------------------


async def test_an_ask_in_flight_in_a_child_stopped_for_a_sibling_restart_fails() -> None:
    recorder = Recorder()
    gate, entered = asyncio.Event(), asyncio.Event()
    specs = [
        ChildSpec(Blocker, "slow", args=(gate, entered), shutdown=0.02),
        ChildSpec(Worker, "crasher", args=("crasher", recorder)),
    ]
    async with ActorSystem(metrics_interval=None) as system:
        system.spawn(Supervisor, specs, strategy=ONE_FOR_ALL, name="sup")
        await recorder.wait_for(1)
        slow, crasher = system.lookup("slow"), system.lookup("crasher")
        assert slow is not None and crasher is not None
        pending = asyncio.ensure_future(slow.ask("stuck", timeout=None))
        async with asyncio.timeout(BOUND):
            await entered.wait()
            crasher.tell("crash")  # ONE_FOR_ALL: "slow" is stopped (cancelled after 0.02 s), then restarted
            with pytest.raises(ActorStopped) as info:
                await pending
            assert isinstance(info.value.__cause__, asyncio.CancelledError)
            gate.set()
            assert await slow.ask("after restart") == "after restart"
        assert slow.alive and _stats.actor_class(Blocker).restarts >= 1


async def test_an_ask_queued_behind_a_crash_is_answered_by_the_restarted_child() -> None:
    recorder = Recorder()
    async with ActorSystem(metrics_interval=None) as system:
        system.spawn(Supervisor, [ChildSpec(Worker, "w", args=("w", recorder))], name="sup")
        await recorder.wait_for(1)
        worker = system.lookup("w")
        assert worker is not None
        worker.tell("crash")
        async with asyncio.timeout(BOUND):
            assert await worker.ask("hello", timeout=None) == ("w", "hello")
        assert recorder.events[:3] == [("start", "w"), ("stop", "w"), ("start", "w")]


async def test_a_child_that_swallows_cancellation_is_abandoned_by_its_supervisor() -> None:
    recorder = Recorder()
    gate, entered = asyncio.Event(), asyncio.Event()
    release = _release_later(gate)
    specs = [
        ChildSpec(Stubborn, "stubborn", args=(gate, entered), shutdown=0.02),
        ChildSpec(Worker, "crasher", args=("crasher", recorder)),
    ]
    try:
        async with ActorSystem(metrics_interval=None, shutdown_timeout=0.02) as system:
            sup = system.spawn(Supervisor, specs, strategy=ONE_FOR_ALL, name="sup")
            await recorder.wait_for(1)
            stubborn, crasher = system.lookup("stubborn"), system.lookup("crasher")
            assert stubborn is not None and crasher is not None
            pending = asyncio.ensure_future(stubborn.ask("stuck", timeout=None))
            async with asyncio.timeout(BOUND):
                await entered.wait()
                crasher.tell("crash")
                with pytest.raises(ActorStopped, match="abandoned"):
                    await pending
                await recorder.wait_for(3)  # crasher: start, stop, start again
                assert not stubborn.alive  # never restarted next to its orphaned loop
                assert [name for name, _ in await sup.ask(WHICH_CHILDREN)] == ["crasher"]
    finally:
        release.cancel()
        gate.set()
    task = stubborn._cell.task
    assert task is not None
    async with asyncio.timeout(BOUND):
        await asyncio.wait((task,))


async def test_an_actor_stuck_in_on_start_that_swallows_cancellation_is_abandoned() -> None:
    gate = asyncio.Event()
    release = _release_later(gate)

    class StuckStart(Actor):
        async def on_start(self) -> None:
            while not gate.is_set():
                try:
                    await gate.wait()
                except asyncio.CancelledError:
                    continue

    try:
        async with ActorSystem(metrics_interval=None, shutdown_timeout=0.02) as system:
            ref = system.spawn(StuckStart)
            waiting = asyncio.ensure_future(ref.started())
            asked = asyncio.ensure_future(ref.ask("hello", timeout=None))
            await asyncio.sleep(0.01)
            stopping = asyncio.ensure_future(system.stop(ref))
            done, _ = await asyncio.wait((stopping,), timeout=BOUND / 2)
            assert done
            async with asyncio.timeout(BOUND):
                with pytest.raises(ActorStopped):
                    await waiting
                with pytest.raises(ActorStopped):
                    await asked
    finally:
        release.cancel()
        gate.set()
    task = ref._cell.task
    assert task is not None
    async with asyncio.timeout(BOUND):
        await asyncio.wait((task,))

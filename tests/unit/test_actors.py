"""nexpo.actors: mailbox semantics, asks, failures, dead letters, watching, timers, shutdown."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest
from _actor_helpers import Probe, Recorder, Worker

from nexpo import _stats
from nexpo.actors import (
    Actor,
    ActorDeadlock,
    ActorRef,
    ActorStopped,
    ActorSystem,
    MailboxFull,
    PendingLimitExceeded,
    Terminated,
)


class Counter(Actor):
    def __init__(self, start: int = 0) -> None:
        self.count = start

    async def receive(self, message: Any) -> Any:
        if message == "get":
            return self.count
        if message == "boom":
            raise ValueError("boom")
        self.count += message
        return None


class Gate(Actor):
    """Blocks on ``gate`` for every message: lets a test fill the mailbox deterministically."""

    def __init__(self, gate: asyncio.Event, seen: list[Any]) -> None:
        self.gate = gate
        self.seen = seen

    async def receive(self, message: Any) -> Any:
        self.seen.append(message)
        await self.gate.wait()
        return message


def _only_current_task() -> bool:
    return asyncio.all_tasks() == {asyncio.current_task()}


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_tell_then_ask_sees_every_message_in_order() -> None:
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Counter, 10, name="counter")
        for i in range(100):
            ref.tell(i)
        assert await ref.ask("get") == 10 + sum(range(100))
        assert system.lookup("counter") is ref
        assert ref.name == "counter" and ref.alive
    assert not ref.alive
    assert system.lookup("counter") is None


async def test_tell_raises_mailbox_full_and_send_waits_for_room() -> None:
    gate, seen = asyncio.Event(), []
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Gate, gate, seen, mailbox=2)
        ref.tell("a")
        await _settle()  # "a" is being processed (blocked on the gate), the mailbox is empty
        ref.tell("b")
        ref.tell("c")
        with pytest.raises(MailboxFull):
            ref.tell("d")
        sender = asyncio.ensure_future(ref.send("d"))
        await _settle()
        assert not sender.done()  # backpressure: waits while the mailbox is full
        gate.set()
        await sender
        assert await ref.ask("e") == "e"
        assert seen == ["a", "b", "c", "d", "e"]


async def test_ask_raises_the_actors_exception_and_the_actor_keeps_running() -> None:
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Counter)
        ref.tell(5)
        with pytest.raises(ValueError, match="boom"):
            await ref.ask("boom")
        assert await ref.ask("get") == 5  # same instance, state intact: an ask failure is the asker's


async def test_ask_timeout_raises_timeout_error_and_the_late_reply_is_dropped() -> None:
    gate, seen = asyncio.Event(), []
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Gate, gate, seen)
        with pytest.raises(TimeoutError, match="timed out"):
            await ref.ask("slow", timeout=0.01)
        assert ref._cell.pending_asks == 0
        gate.set()
        assert await ref.ask("next") == "next"  # the expired ask's reply went nowhere, no error


async def test_ask_to_an_actor_that_never_replies_in_time_from_many_askers() -> None:
    gate, seen = asyncio.Event(), []
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Gate, gate, seen)
        results = await asyncio.gather(
            *(ref.ask(i, timeout=0.01 * (1 + i % 3)) for i in range(20)), return_exceptions=True
        )
        assert all(isinstance(r, TimeoutError) for r in results)
        gate.set()


async def test_actor_asking_itself_raises_at_once() -> None:
    class Narcissus(Actor):
        async def receive(self, message: Any) -> Any:
            if message == "self":
                return await self.ref.ask("other")
            return "ok"

    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Narcissus)
        with pytest.raises(ActorDeadlock):
            await ref.ask("self", timeout=None)
        assert await ref.ask("x") == "ok"


async def test_pending_ask_limit() -> None:
    gate, seen = asyncio.Event(), []
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Gate, gate, seen, max_pending_asks=2)
        first = asyncio.ensure_future(ref.ask(1))
        second = asyncio.ensure_future(ref.ask(2))
        await _settle()
        with pytest.raises(PendingLimitExceeded):
            await ref.ask(3)
        gate.set()
        assert await asyncio.gather(first, second) == [1, 2]
        assert await ref.ask(4) == 4  # room again once answered


async def test_messages_to_a_stopped_actor_are_dead_letters() -> None:
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Counter, name="gone")
        await system.stop(ref)
        before = system.dead_letter_count
        ref.tell(1)
        with pytest.raises(ActorStopped):
            await ref.ask("get")
        ref.tell_threadsafe(2)
        assert system.dead_letter_count == before + 3
        letters = system.dead_letters[-3:]
        assert [(d.recipient, d.message, d.reason) for d in letters] == [
            ("gone", 1, "stopped"), ("gone", "get", "stopped"), ("gone", 2, "stopped"),
        ]  # fmt: skip


async def test_stop_dead_letters_the_rest_of_the_mailbox_and_fails_queued_asks() -> None:
    gate, seen = asyncio.Event(), []
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Gate, gate, seen)
        ref.tell("first")
        await _settle()
        ref.tell("queued-1")
        ref.tell("queued-2")
        pending = asyncio.ensure_future(ref.ask("queued-ask", timeout=None))
        await _settle()
        stopping = asyncio.ensure_future(system.stop(ref))
        await _settle()
        gate.set()
        await stopping
        with pytest.raises(ActorStopped):
            await pending
        assert seen == ["first"]
        assert [d.message for d in system.dead_letters] == ["queued-1", "queued-2", "queued-ask"]


async def test_shutdown_with_drain_processes_what_is_queued() -> None:
    system = ActorSystem(metrics_interval=None)
    async with system:
        ref = system.spawn(Counter)
        for _ in range(10):
            ref.tell(1)
        await system.shutdown(drain=True)
    assert ref._cell.exit_reason is None
    assert system.dead_letter_count == 0


async def test_watch_delivers_terminated_with_the_reason() -> None:
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    async with ActorSystem(metrics_interval=None, max_restarts=0) as system:
        probe = system.spawn(Probe, inbox)
        quiet = system.spawn(Counter)
        failing = system.spawn(Counter)
        system.watch(quiet, probe)
        system.watch(failing, probe)
        await system.stop(quiet)
        assert await inbox.get() == Terminated(quiet, None)
        failing.tell("boom")  # max_restarts=0: the first failure is final
        event = await inbox.get()
        assert event.ref is failing and isinstance(event.reason, ValueError)
        system.watch(failing, probe)  # watching a dead actor answers at once
        assert (await inbox.get()).ref is failing


async def test_a_failing_tell_is_logged_counted_and_the_actor_restarted_with_its_state(
    caplog: pytest.LogCaptureFixture,
) -> None:
    restarts: list[BaseException] = []

    class Keeper(Actor):
        def __init__(self) -> None:
            self.total = 0

        async def receive(self, message: Any) -> Any:
            if message == "boom":
                raise KeyError("lost")
            if message == "get":
                return self.total
            self.total += message
            return None

        async def on_restart(self, exc: BaseException) -> None:
            restarts.append(exc)

        def snapshot(self) -> Any:
            return self.total

        def restore(self, state: Any) -> None:
            self.total = state

    stats = _stats.actor_class(Keeper)
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Keeper, name="keeper")
        ref.tell(3)
        with caplog.at_level(logging.ERROR, logger="nexpo.actors"):
            ref.tell("boom")
            ref.tell(4)
            assert await ref.ask("get") == 7  # restarted, state restored, later messages kept
        assert "keeper failed on 'boom'" in caplog.text
        assert len(restarts) == 1 and isinstance(restarts[0], KeyError)
        assert stats.failures == 1 and stats.restarts == 1


async def test_top_level_restart_intensity_stops_a_crash_looping_actor() -> None:
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    async with ActorSystem(metrics_interval=None, max_restarts=2, period=60) as system:
        probe = system.spawn(Probe, inbox)
        ref = system.spawn(Counter)
        system.watch(ref, probe)
        for _ in range(3):
            ref.tell("boom")
        event = await inbox.get()
        assert event.ref is ref and isinstance(event.reason, ValueError)
        assert not ref.alive


async def test_on_start_failure_counts_as_a_failure() -> None:
    attempts: list[int] = []

    class Fragile(Actor):
        async def on_start(self) -> None:
            attempts.append(1)
            if len(attempts) < 3:
                raise OSError("not yet")

        async def receive(self, message: Any) -> Any:
            return "up"

    async with ActorSystem(metrics_interval=None, max_restarts=5, period=60) as system:
        ref = system.spawn(Fragile)
        assert await ref.ask("?") == "up"
        assert len(attempts) == 3


async def test_tell_threadsafe_from_other_threads() -> None:
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Counter, mailbox=None)

        def produce() -> None:
            for _ in range(500):
                ref.tell_threadsafe(1)

        threads = [threading.Thread(target=produce) for _ in range(4)]
        for thread in threads:
            thread.start()
        await asyncio.to_thread(lambda: [thread.join() for thread in threads])
        await _settle()
        assert await ref.ask("get") == 2000


async def test_tell_threadsafe_into_a_full_mailbox_is_a_dead_letter() -> None:
    gate, seen = asyncio.Event(), []
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Gate, gate, seen, mailbox=1)
        ref.tell("a")
        await _settle()
        ref.tell("b")
        await asyncio.to_thread(ref.tell_threadsafe, "c")
        await _settle()
        assert [(d.message, d.reason) for d in system.dead_letters] == [("c", "mailbox full")]
        gate.set()


async def test_timers_deliver_and_stop_with_the_actor() -> None:
    ticks = asyncio.Queue[str]()

    class Ticker(Actor):
        async def on_start(self) -> None:
            self.every = self.schedule_every(0.001, "tick")
            self.once = self.schedule_once(0.001, "once")
            self.never = self.schedule_once(3600, "never")

        async def receive(self, message: Any) -> Any:
            if message == "timers":
                return self.every, self.once, self.never
            ticks.put_nowait(message)
            return None

    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Ticker)
        every, once, never = await ref.ask("timers")
        received = {await ticks.get() for _ in range(4)}
        assert received == {"tick", "once"}
        assert not once.active and every.active and never.active
        await system.stop(ref)
        assert not every.active and not never.active
        assert not ref._cell.timers
        assert system.dead_letter_count == 0


async def test_timers_are_cancelled_on_restart() -> None:
    class Flaky(Actor):
        async def on_start(self) -> None:
            self.timer = self.schedule_every(3600, "tick")

        async def receive(self, message: Any) -> Any:
            if message == "boom":
                raise RuntimeError("boom")
            return self.timer

    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Flaky)
        first = await ref.ask("timer")
        ref.tell("boom")
        second = await ref.ask("timer")
        assert first is not second and not first.active and second.active
        assert len(ref._cell.timers) == 1


async def test_no_task_is_left_after_shutdown() -> None:
    recorder = Recorder()
    system = ActorSystem(metrics_interval=0.01, shutdown_timeout=0.05)
    async with system:
        refs = [system.spawn(Worker, f"w{i}", recorder) for i in range(50)]
        assert [await ref.ask("hi") for ref in refs[:3]] == [("w0", "hi"), ("w1", "hi"), ("w2", "hi")]
        refs[3].tell("crash")
        refs[4].tell("exit")
        blocked = system.spawn(Gate, asyncio.Event(), [])
        blocked.tell("stuck")
        await _settle()
    assert _only_current_task()
    assert not system.actors


async def test_shutdown_cancels_an_actor_that_does_not_stop_in_time() -> None:
    system = ActorSystem(metrics_interval=None, shutdown_timeout=0.01)
    async with system:
        blocked = system.spawn(Gate, asyncio.Event(), [])
        blocked.tell("stuck forever")
        await _settle()
    assert _only_current_task()
    assert not blocked.alive


async def test_arguments_are_checked() -> None:
    async with ActorSystem(metrics_interval=None) as system:
        with pytest.raises(ValueError, match="mailbox"):
            system.spawn(Counter, mailbox=0)
        with pytest.raises(ValueError, match="max_pending_asks"):
            system.spawn(Counter, max_pending_asks=0)
        with pytest.raises(TypeError, match="factory"):
            system.spawn(42)  # type: ignore[arg-type]
        system.spawn(Counter, name="taken")
        with pytest.raises(ValueError, match="already running"):
            system.spawn(Counter, name="taken")
        with pytest.raises(TypeError, match="ActorRef"):
            system.watch("x", "y")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_restarts"):
            ActorSystem(max_restarts=-1)
    with pytest.raises(RuntimeError, match="shut down"):
        system.spawn(Counter)


async def test_using_an_actor_outside_a_system_explains_itself() -> None:
    with pytest.raises(RuntimeError, match=r"ActorSystem\.spawn"):
        _ = Counter().ref
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Actor)  # no receive implemented: the failure reaches the asker
        with pytest.raises(TypeError, match="must implement"):
            await ref.ask("hello")


async def test_actor_ref_repr_and_mailbox_size() -> None:
    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Counter, name="c")
        assert repr(ref) == "<ActorRef c alive>"
        assert isinstance(ref, ActorRef) and ref.mailbox_size == 0
    assert repr(ref) == "<ActorRef c stopped>"


async def test_a_stray_cancelled_error_in_receive_is_a_failure_not_a_silent_death() -> None:
    class Leaky(Actor):
        async def receive(self, message: Any) -> Any:
            if message == "leak":
                future = asyncio.get_running_loop().create_future()
                future.cancel()
                await future  # raises CancelledError although nobody cancelled this actor
            return "alive"

    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Leaky)
        with pytest.raises(asyncio.CancelledError):
            await ref.ask("leak")
        assert await ref.ask("again") == "alive"
        ref.tell("leak")  # as a tell: logged, counted, restarted
        assert await ref.ask("again") == "alive"
        assert _stats.actor_class(Leaky).restarts == 1


async def test_a_factory_that_returns_something_else_fails_clearly(caplog: pytest.LogCaptureFixture) -> None:
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    async with ActorSystem(metrics_interval=None, max_restarts=0) as system:
        probe = system.spawn(Probe, inbox)
        ref = system.spawn(lambda: "not an actor")  # type: ignore[arg-type, return-value]
        system.watch(ref, probe)
        terminated = await inbox.get()
        assert isinstance(terminated.reason, TypeError)
        assert "not an Actor" in str(terminated.reason)


async def test_messages_whose_equality_is_odd_pass_through_failures_and_restarts() -> None:
    class Weird:
        def __eq__(self, other: object) -> bool:
            raise ValueError("no comparisons, please")

        __hash__ = object.__hash__

    seen: list[Any] = []

    class Sink(Actor):
        async def receive(self, message: Any) -> Any:
            if message is None:
                raise RuntimeError("restart me")
            seen.append(message)
            return len(seen)

    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Sink)
        weird = Weird()
        ref.tell(weird)
        ref.tell(None)
        ref.tell(weird)
        assert await ref.ask(weird) == 3
        ref.stop()
    assert seen == [weird, weird, weird]


async def test_started_waits_for_on_start_and_reports_a_final_start_failure() -> None:
    class Slow(Actor):
        async def on_start(self) -> None:
            for _ in range(3):
                await asyncio.sleep(0)
            self.ready = True

        async def receive(self, message: Any) -> Any:
            return self.ready

    class Hopeless(Actor):
        async def on_start(self) -> None:
            raise OSError("no database")

    async with ActorSystem(metrics_interval=None, max_restarts=1) as system:
        ref = system.spawn(Slow)
        await ref.started()
        assert ref._cell.actor is not None and await ref.ask("?") is True
        hopeless = system.spawn(Hopeless)
        with pytest.raises(ActorStopped) as failure:
            await hopeless.started()
        assert isinstance(failure.value.__cause__, OSError)


async def test_shutdown_while_a_supervisor_is_starting_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    from nexpo.supervision import ChildSpec, Supervisor

    recorder = Recorder()
    with caplog.at_level(logging.ERROR):
        async with ActorSystem(metrics_interval=None) as system:
            system.spawn(Supervisor, [ChildSpec(Worker, "w", args=("w", recorder))])
    assert recorder.events == [("start", "w"), ("stop", "w")]
    assert not caplog.records
    assert _only_current_task()


async def test_an_actor_awaiting_its_own_stop_is_told_to_use_self_stop() -> None:
    class Quitter(Actor):
        async def receive(self, message: Any) -> Any:
            await self.system.stop(self.ref)

    async with ActorSystem(metrics_interval=None) as system:
        ref = system.spawn(Quitter)
        with pytest.raises(ActorDeadlock, match=r"self\.stop"):
            await ref.ask("quit")

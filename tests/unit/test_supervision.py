"""nexpo.supervision: OTP strategies and ordering, restart types, intensity escalation, backoff,
nested trees, circuit breaker on a fake clock, bulkhead."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from _actor_helpers import Probe, Recorder, Worker

from nexpo import _stats
from nexpo._actors.policy import Intensity
from nexpo.actors import ActorRef, ActorSystem
from nexpo.errors import BulkheadFull, CircuitOpen, NexpoError, RestartIntensityExceeded
from nexpo.supervision import (
    ONE_FOR_ALL,
    ONE_FOR_ONE,
    PERMANENT,
    REST_FOR_ONE,
    TEMPORARY,
    TRANSIENT,
    WHICH_CHILDREN,
    Backoff,
    Bulkhead,
    ChildSpec,
    CircuitBreaker,
    CircuitState,
    Restart,
    Strategy,
    Supervisor,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _specs(recorder: Recorder, *names: str, restart: Restart = PERMANENT) -> list[ChildSpec]:
    return [ChildSpec(Worker, name, restart=restart, args=(name, recorder)) for name in names]


def _child(system: ActorSystem, name: str) -> ActorRef:
    ref = system.lookup(name)
    assert ref is not None, name
    return ref


START = [("start", "a"), ("start", "b"), ("start", "c")]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (ONE_FOR_ONE, [("stop", "b"), ("start", "b")]),
        # the failed child is already down; the others stop in reverse start order, then all
        # restart in start order
        (ONE_FOR_ALL, [("stop", "b"), ("stop", "c"), ("stop", "a"),
                       ("start", "a"), ("start", "b"), ("start", "c")]),
        (REST_FOR_ONE, [("stop", "b"), ("stop", "c"), ("start", "b"), ("start", "c")]),
    ],
)  # fmt: skip
async def test_strategy_restarts_which_children_in_which_order(
    strategy: Strategy, expected: list[tuple[str, str]]
) -> None:
    recorder = Recorder()
    async with ActorSystem(metrics_interval=None) as system:
        system.spawn(Supervisor, _specs(recorder, "a", "b", "c"), strategy=strategy, name="sup")
        assert await recorder.wait_for(3) == START
        b = _child(system, "b")
        b.tell("crash")
        assert (await recorder.wait_for(3 + len(expected)))[3:] == expected
        # refs survive restarts, and the restarted children work
        assert _child(system, "b") is b
        assert await b.ask("ping") == ("b", "ping")
        for name in "ac":
            assert await _child(system, name).ask("ping") == (name, "ping")
        await asyncio.sleep(0)
        assert len(recorder.events) == 3 + len(expected)


async def test_rest_for_one_on_the_last_child_restarts_only_it() -> None:
    recorder = Recorder()
    async with ActorSystem(metrics_interval=None) as system:
        system.spawn(Supervisor, _specs(recorder, "a", "b", "c"), strategy=REST_FOR_ONE)
        await recorder.wait_for(3)
        _child(system, "c").tell("crash")
        assert (await recorder.wait_for(5))[3:] == [("stop", "c"), ("start", "c")]


async def test_temporary_siblings_are_stopped_but_not_restarted() -> None:
    recorder = Recorder()
    specs = [
        ChildSpec(Worker, "a", args=("a", recorder)),
        ChildSpec(Worker, "t", restart=TEMPORARY, args=("t", recorder)),
        ChildSpec(Worker, "c", args=("c", recorder)),
    ]
    async with ActorSystem(metrics_interval=None) as system:
        sup = system.spawn(Supervisor, specs, strategy=ONE_FOR_ALL)
        await recorder.wait_for(3)
        _child(system, "a").tell("crash")
        events = await recorder.wait_for(8)
        assert events[3:] == [("stop", "a"), ("stop", "c"), ("stop", "t"), ("start", "a"), ("start", "c")]
        assert system.lookup("t") is None
        assert [name for name, _ in await sup.ask(WHICH_CHILDREN)] == ["a", "c"]


@pytest.mark.parametrize(
    ("restart", "message", "restarted"),
    [
        (PERMANENT, "exit", True),
        (PERMANENT, "crash", True),
        (TRANSIENT, "exit", False),
        (TRANSIENT, "crash", True),
        (TEMPORARY, "exit", False),
        (TEMPORARY, "crash", False),
    ],
)
async def test_restart_type_on_normal_and_abnormal_exit(
    restart: Restart, message: str, restarted: bool
) -> None:
    recorder = Recorder()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    async with ActorSystem(metrics_interval=None) as system:
        probe = system.spawn(Probe, inbox)
        system.spawn(Supervisor, _specs(recorder, "w", restart=restart))
        await recorder.wait_for(1)
        child = _child(system, "w")
        system.watch(child, probe)
        child.tell(message)
        if restarted:
            assert (await recorder.wait_for(3))[1:] == [("stop", "w"), ("start", "w")]
            assert await child.ask("ping") == ("w", "ping")
        else:
            terminated = await inbox.get()
            assert terminated.ref is child
            assert (terminated.reason is None) == (message == "exit")
            assert system.lookup("w") is None
            assert recorder.events == [("start", "w"), ("stop", "w")]


async def test_intensity_escalates_through_two_levels() -> None:
    recorder = Recorder()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    clock = FakeClock()
    middle = ChildSpec(
        Supervisor, "middle",
        args=(_specs(recorder, "leaf"),), kwargs={"max_restarts": 1, "period": 10, "clock": clock},
    )  # fmt: skip
    async with ActorSystem(metrics_interval=None) as system:
        probe = system.spawn(Probe, inbox)
        root = system.spawn(Supervisor, [middle], max_restarts=1, period=10, clock=clock, name="root")
        system.watch(root, probe)
        starts = 1
        await recorder.wait_for(1)
        # leaf crash 1: middle restarts it; crash 2: middle gives up, root restarts middle (a
        # fresh leaf); crash 3: the new middle restarts it; crash 4: middle gives up again, and
        # that second restart of middle is more than root allows: root gives up too.
        for _crash in range(3):
            _child(system, "leaf").tell("crash")
            starts += 1
            while (
                sum(kind == "start" for kind, _ in await recorder.wait_for(len(recorder.events) + 1)) < starts
            ):
                pass
        _child(system, "leaf").tell("crash")
        terminated = await inbox.get()
        assert terminated.ref is root
        assert isinstance(terminated.reason, RestartIntensityExceeded)
        assert isinstance(terminated.reason.__cause__, RestartIntensityExceeded)  # middle's, the cause
        assert [ref.name for ref in system.actors] == [probe.name]
        # leaf: started, then restarted by middle, by root (new middle), by the new middle
        assert recorder.events == [
            ("start", "leaf"),
            *[("stop", "leaf"), ("start", "leaf")] * 3,
            ("stop", "leaf"),
        ]


async def test_restarts_outside_the_period_do_not_count() -> None:
    clock = FakeClock()
    intensity = Intensity(2, 10.0, clock)
    assert intensity.allow() and intensity.allow()
    assert not intensity.allow()
    clock.advance(10.5)
    assert intensity.allow()
    assert intensity.recent == 1
    with pytest.raises(ValueError, match="max_restarts"):
        Intensity(-1, 1.0, clock)
    with pytest.raises(ValueError, match="period"):
        Intensity(1, 0.0, clock)


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    exact = Backoff(initial=0.1, factor=2.0, cap=1.0, jitter=0.0)
    assert [exact.delay(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    jittered = Backoff(initial=0.1, factor=2.0, cap=1.0, jitter=0.5)
    rng = random.Random(7)
    delays = [jittered.delay(3, rng) for _ in range(200)]
    assert all(0.2 <= d <= 0.6 for d in delays)
    assert max(delays) - min(delays) > 0.1  # it does spread
    assert all(jittered.delay(20, rng) <= 1.0 for _ in range(50))
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=2.0)
    with pytest.raises(ValueError, match="factor"):
        Backoff(factor=0.5)


async def test_supervisor_with_backoff_restarts_after_the_delay() -> None:
    recorder = Recorder()
    backoff = Backoff(initial=0.001, factor=2.0, cap=0.002, jitter=0.1)
    async with ActorSystem(metrics_interval=None) as system:
        system.spawn(
            Supervisor, _specs(recorder, "w"), backoff=backoff, rng=random.Random(1), max_restarts=10
        )
        await recorder.wait_for(1)
        for restarts in range(1, 4):
            _child(system, "w").tell("crash")
            await recorder.wait_for(1 + 2 * restarts)
        assert recorder.events[-1] == ("start", "w")


async def test_a_supervisor_keeps_answering_while_a_child_backs_off() -> None:
    # The restart waits 30 s; the supervisor must answer, and handle other exits, meanwhile (it
    # used to sleep inside `receive`: this ask timed out). Shutdown does not wait for the retry.
    recorder = Recorder()
    specs = [*_specs(recorder, "w"), *_specs(recorder, "t", restart=TEMPORARY)]
    slow = Backoff(initial=30.0, cap=30.0, jitter=0.0)
    async with ActorSystem(metrics_interval=None) as system:
        sup = system.spawn(Supervisor, specs, backoff=slow)
        await recorder.wait_for(2)
        w = _child(system, "w")
        w.tell("crash")
        await recorder.wait_for(3)
        children = await sup.ask(WHICH_CHILDREN, timeout=5)
        assert [name for name, _ in children] == ["w", "t"]
        _child(system, "t").tell("crash")  # another child's exit, handled at once
        await recorder.wait_for(4)
        assert [name for name, _ in await sup.ask(WHICH_CHILDREN, timeout=5)] == ["w"]
        assert recorder.events == [("start", "w"), ("start", "t"), ("stop", "w"), ("stop", "t")]
        assert w.alive  # still supervised, waiting for its restart
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert not w.alive and len(recorder.events) == 4


class _FirstRestartWaits(Backoff):
    """The first restart of the window waits 0.05 s, the others none."""

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        return 0.05 if attempt == 1 else 0.0


async def test_a_retry_overtaken_by_a_siblings_restart_is_dropped() -> None:
    recorder = Recorder()
    async with ActorSystem(metrics_interval=None) as system:
        sup = system.spawn(
            Supervisor, _specs(recorder, "a", "b", "c"), strategy=ONE_FOR_ALL, backoff=_FirstRestartWaits()
        )
        await recorder.wait_for(3)
        _child(system, "a").tell("crash")  # restart delayed by 0.05 s
        await recorder.wait_for(4)
        await sup.ask(WHICH_CHILDREN)  # its exit was handled: the retry is scheduled
        _child(system, "b").tell("crash")  # restarted at once, with everyone (a included)
        stops = [("stop", "a"), ("stop", "b"), ("stop", "c")]
        assert (await recorder.wait_for(9))[3:] == [*stops, ("start", "a"), ("start", "b"), ("start", "c")]
        await asyncio.sleep(0.1)  # the retry fires (posted before the ask below) and is stale
        assert [name for name, _ in await sup.ask(WHICH_CHILDREN)] == ["a", "b", "c"]
        assert len(recorder.events) == 9  # nobody restarted twice


@pytest.mark.parametrize("exit_handled", [False, True])
async def test_a_child_stopped_while_it_backs_off_is_not_restarted_nor_listed(exit_handled: bool) -> None:
    # (A child removed by `system.stop` used to stay in WHICH_CHILDREN when its last exit
    # reached the supervisor after the stop.)
    recorder = Recorder()
    async with ActorSystem(metrics_interval=None) as system:
        sup = system.spawn(Supervisor, _specs(recorder, "w", "x"), backoff=Backoff(initial=0.05, jitter=0.0))
        await recorder.wait_for(2)
        w = _child(system, "w")
        w.tell("crash")
        await recorder.wait_for(3)
        if exit_handled:
            await sup.ask(WHICH_CHILDREN)  # the retry is scheduled; else the exit is still queued
        await system.stop(w)
        await asyncio.sleep(0.1)  # the retry (if any) fires and finds the child gone
        assert [name for name, _ in await sup.ask(WHICH_CHILDREN)] == ["x"]
        assert recorder.events == [("start", "w"), ("start", "x"), ("stop", "w")]


async def test_nested_tree_starts_depth_first_and_stops_in_reverse() -> None:
    recorder = Recorder()
    inner = ChildSpec(Supervisor, "inner", args=(_specs(recorder, "b", "c"),))
    specs = [
        ChildSpec(Worker, "a", args=("a", recorder)),
        inner,
        ChildSpec(Worker, "d", args=("d", recorder)),
    ]
    system = ActorSystem(metrics_interval=None)
    async with system:
        system.spawn(Supervisor, specs, name="root")
        assert await recorder.wait_for(4) == [("start", "a"), ("start", "b"), ("start", "c"), ("start", "d")]
    assert recorder.events[4:] == [("stop", "d"), ("stop", "c"), ("stop", "b"), ("stop", "a")]
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_child_that_fails_to_start_fails_its_supervisor() -> None:
    class Broken(Worker):
        async def on_start(self) -> None:
            raise OSError("cannot start")

    recorder = Recorder()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    specs = [ChildSpec(Worker, "a", args=("a", recorder)), ChildSpec(Broken, "b", args=("b", recorder))]
    async with ActorSystem(metrics_interval=None) as system:
        probe = system.spawn(Probe, inbox)
        sup = system.spawn(Supervisor, specs)
        system.watch(sup, probe)
        terminated = await inbox.get()
        assert isinstance(terminated.reason, OSError)
        assert recorder.events == [("start", "a"), ("stop", "b"), ("stop", "a")]


def test_child_spec_and_supervisor_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="factory"):
        ChildSpec(42, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        ChildSpec(Worker, "")
    with pytest.raises(TypeError, match="restart"):
        ChildSpec(Worker, "x", restart="permanent")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unique"):
        Supervisor([ChildSpec(Worker, "x"), ChildSpec(Worker, "x")])
    with pytest.raises(TypeError, match="ChildSpec"):
        Supervisor([Worker])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="strategy"):
        Supervisor([], strategy="one_for_one")  # type: ignore[arg-type]


# -- circuit breaker ------------------------------------------------------------------------------


async def test_circuit_breaker_transitions_on_a_fake_clock() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        "cb-transitions", failure_threshold=3, reset_timeout=30, success_threshold=2, clock=clock
    )

    async def call(ok: bool) -> str:
        async with breaker:
            if not ok:
                raise ConnectionError("down")
        return "ok"

    assert breaker.state is CircuitState.CLOSED
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await call(False)
    assert await call(True) == "ok"  # a success resets the consecutive-failure count
    for _ in range(3):
        with pytest.raises(ConnectionError):
            await call(False)
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpen, match="retry in 30"):
        await call(True)
    clock.advance(29.9)
    assert breaker.state is CircuitState.OPEN
    clock.advance(0.1)
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(ConnectionError):
        await call(False)  # a failed trial opens it again, for a full reset_timeout
    assert breaker.state is CircuitState.OPEN
    clock.advance(30)
    assert await call(True) == "ok"
    assert breaker.state is CircuitState.HALF_OPEN  # needs success_threshold=2
    assert await call(True) == "ok"
    assert breaker.state is CircuitState.CLOSED
    transitions = {k[1:]: v for k, v in _stats.circuit_transitions.items() if k[0] == "cb-transitions"}
    assert transitions == {
        ("closed", "open"): 1, ("open", "half_open"): 2, ("half_open", "open"): 1, ("half_open", "closed"): 1,
    }  # fmt: skip


async def test_half_open_admits_a_limited_number_of_trials() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("cb-trials", failure_threshold=1, reset_timeout=1, clock=clock)
    breaker.record_failure()
    clock.advance(1)
    breaker.acquire()  # the one trial
    with pytest.raises(CircuitOpen):
        breaker.acquire()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED


async def test_circuit_breaker_as_decorator_ignores_unlisted_exceptions() -> None:
    breaker = CircuitBreaker("cb-decorator", failure_threshold=1, failure_types=ConnectionError)

    @breaker
    async def fetch(value: Any) -> Any:
        if isinstance(value, Exception):
            raise value
        return value

    with pytest.raises(ValueError, match="bad input"):
        await fetch(ValueError("bad input"))
    assert breaker.state is CircuitState.CLOSED  # not the dependency's fault
    assert await fetch(5) == 5
    with pytest.raises(ConnectionError):
        await fetch(ConnectionError())
    with pytest.raises(CircuitOpen):
        await fetch(6)
    assert issubclass(CircuitOpen, NexpoError)
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreaker(failure_threshold=0)


# -- bulkhead -------------------------------------------------------------------------------------


async def test_bulkhead_limits_concurrency_and_waiting_room() -> None:
    bulkhead = Bulkhead("bh-test", max_concurrent=2, max_waiting=1)
    release = asyncio.Event()
    entered: list[int] = []

    @bulkhead
    async def work(i: int) -> int:
        entered.append(i)
        await release.wait()
        return i

    running = [asyncio.ensure_future(work(i)) for i in range(3)]
    await asyncio.sleep(0)
    assert entered == [0, 1] and bulkhead.active == 2 and bulkhead.waiting == 1
    with pytest.raises(BulkheadFull):
        await work(3)
    assert bulkhead.rejected == 1 and _stats.bulkhead_rejections["bh-test"] == 1
    release.set()
    assert await asyncio.gather(*running) == [0, 1, 2]
    assert bulkhead.active == 0 and bulkhead.waiting == 0
    async with bulkhead:
        assert bulkhead.active == 1
    with pytest.raises(ValueError, match="max_concurrent"):
        Bulkhead(max_concurrent=0)
    with pytest.raises(ValueError, match="max_waiting"):
        Bulkhead(max_waiting=-1)


async def test_a_cancelled_waiter_frees_its_place() -> None:
    bulkhead = Bulkhead("bh-cancel", max_concurrent=1, max_waiting=1)
    release = asyncio.Event()

    async def hold() -> None:
        async with bulkhead:
            await release.wait()

    holder = asyncio.ensure_future(hold())
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(bulkhead.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert bulkhead.waiting == 0
    release.set()
    await holder
    async with bulkhead:
        assert bulkhead.active == 1


async def test_a_supervisor_ignores_unexpected_messages(caplog: pytest.LogCaptureFixture) -> None:
    recorder = Recorder()
    async with ActorSystem(metrics_interval=None) as system:
        sup = system.spawn(Supervisor, _specs(recorder, "a"))
        await sup.started()
        assert await sup.ask("what?") is None
        assert "ignored an unexpected message" in caplog.text
        assert [name for name, _ in await sup.ask(WHICH_CHILDREN)] == ["a"]

"""Hypothesis: supervisors against a model of Erlang/OTP's restart rules and ordering."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nexpo.actors import ActorSystem
from nexpo.supervision import WHICH_CHILDREN, ChildSpec, Restart, Strategy, Supervisor

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))  # the shared test actors
from _actor_helpers import Recorder, Worker


def _model(
    children: list[tuple[str, Restart]], strategy: Strategy, crashed: str
) -> tuple[list[tuple[str, str]], list[tuple[str, Restart]]]:
    """Events after `crashed` raised, and the children left, per OTP."""
    names = [name for name, _ in children]
    index = names.index(crashed)
    events = [("stop", crashed)]  # a failing actor's on_stop runs first
    if children[index][1] is Restart.TEMPORARY:
        return events, [c for c in children if c[0] != crashed]
    if strategy is Strategy.ONE_FOR_ONE:
        group = [children[index]]
    elif strategy is Strategy.ONE_FOR_ALL:
        group = list(children)
    else:
        group = children[index:]
    events += [("stop", name) for name, _ in reversed(group) if name != crashed]
    left = list(children)
    for name, restart in group:
        if name != crashed and restart is Restart.TEMPORARY:
            left.remove((name, restart))
        else:
            events.append(("start", name))
    return events, left


@settings(max_examples=60, deadline=None)
@given(
    restarts=st.lists(st.sampled_from(list(Restart)), min_size=1, max_size=5),
    strategy=st.sampled_from(list(Strategy)),
    crashes=st.lists(st.integers(0, 4), min_size=1, max_size=3),
)
def test_supervisor_matches_the_otp_model(
    restarts: list[Restart], strategy: Strategy, crashes: list[int]
) -> None:
    async def run() -> None:
        recorder = Recorder()
        children = [(f"c{i}", restart) for i, restart in enumerate(restarts)]
        specs = [
            ChildSpec(Worker, name, restart=restart, args=(name, recorder)) for name, restart in children
        ]
        async with ActorSystem(metrics_interval=None) as system:
            sup = system.spawn(Supervisor, specs, strategy=strategy, max_restarts=100, period=60)
            await sup.started()
            assert recorder.events == [("start", name) for name, _ in children]
            for pick in crashes:
                if not children:
                    break
                crashed = children[pick % len(children)][0]
                expected, children = _model(children, strategy, crashed)
                before = len(recorder.events)
                ref = system.lookup(crashed)
                assert ref is not None
                ref.tell("crash")
                await recorder.wait_for(before + len(expected))
                # the supervisor has finished this exit once it answers (its mailbox is FIFO,
                # and the exit was posted before the last event we waited for)
                running = [name for name, _ in await sup.ask(WHICH_CHILDREN)]
                assert recorder.since(before) == expected
                assert running == [name for name, _ in children]

    asyncio.run(run())

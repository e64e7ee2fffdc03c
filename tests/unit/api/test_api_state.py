"""api/state.py: ``Gateway.run`` is the one place that picks the event loop or a worker thread."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import anyio
import anyio.to_thread
import numpy as np
import pytest
from gateway_helpers import make_settings
from nexpo.api.inference.registry import Layer, MlpModel
from nexpo.api.state import Gateway

API = Path(__file__).resolve().parents[3] / "api"


def _gateway(tmp_path: Path, **overrides: object) -> Gateway:
    return Gateway.create(make_settings(tmp_path, **overrides))


async def test_cheap_work_runs_inline_and_costly_work_in_a_worker_thread(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path, max_inline_cost=1000)
    loop_thread = threading.get_ident()
    assert await gateway.run(threading.get_ident, cost=0) == loop_thread
    assert await gateway.run(threading.get_ident, cost=1000) == loop_thread
    assert await gateway.run(threading.get_ident, cost=1001) != loop_thread
    assert await gateway.run(lambda a, b: a + b, 2, 3, cost=10**9) == 5
    nothing_inline = _gateway(tmp_path, max_inline_cost=0)
    assert await nothing_inline.run(threading.get_ident, cost=1) != loop_thread


async def test_errors_come_back_from_either_side(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path, max_inline_cost=10)

    def fail() -> None:
        raise ValueError("bad input")

    for cost in (0, 11):
        with pytest.raises(ValueError, match="bad input"):
            await gateway.run(fail, cost=cost)


async def test_worker_threads_are_capped_at_cpu_workers(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path, max_inline_cost=0, cpu_workers=2)
    lock = threading.Lock()
    running, most = 0, 0
    two_running, release = threading.Event(), threading.Event()

    def job() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            if running == 2:
                two_running.set()
        release.wait(5)
        with lock:
            running -= 1

    async with anyio.create_task_group() as tasks:
        for _ in range(6):
            tasks.start_soon(lambda: gateway.run(job, cost=1))
        assert await anyio.to_thread.run_sync(two_running.wait, 5)
        await anyio.sleep(0.05)  # a third job would have started by now
        assert most == 2
        release.set()
    assert running == 0


async def test_infer_without_a_batcher_prices_the_forward_pass(tmp_path: Path) -> None:
    gateway = _gateway(tmp_path)
    layer = Layer(np.eye(2, dtype=np.float32), np.zeros(2, np.float32), "softmax")
    model = MlpModel("tiny", (layer,), ("a", "b"))
    assert model.forward_cost(3) == 4 * (6 + 3 * (2 + 2))  # parameters, inputs, outputs
    gateway.registry.models["tiny"] = model
    seen: list[int] = []
    run = gateway.run

    async def recording_run(fn, *args, cost):  # type: ignore[no-untyped-def]
        seen.append(cost)
        return await run(fn, *args, cost=cost)

    gateway.run = recording_run  # type: ignore[method-assign]
    probabilities = await gateway.infer(model, np.ones((3, 2), np.float32))
    assert probabilities.shape == (3, 2)
    assert seen == [model.forward_cost(3)]


def test_no_router_decides_for_itself() -> None:
    """The inline-or-thread decision and its threshold live in Gateway.run and Settings only."""
    for path in [*API.glob("routers/*.py"), API / "bodies.py", API / "codec.py", API / "fastpath.py"]:
        source = path.read_text()
        assert "run_cpu" not in source, path
        assert not re.search(r"\bINLINE_[A-Z]+\s*=", source), path

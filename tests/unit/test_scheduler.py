"""nexpo.scheduler: pool size and per-worker counters."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

import nexpo
from nexpo import scheduler


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    before = scheduler.get_num_threads()
    yield
    scheduler.set_num_threads(before)


def test_default_is_the_usable_cores() -> None:
    # The test process may have been resized by another test; the default is read at import.
    assert 1 <= scheduler.get_num_threads() <= 1024
    assert len(os.sched_getaffinity(0)) >= 1


def test_the_default_comes_from_the_affinity_mask_not_from_stdin() -> None:
    # Before: the syscall number was a local 0 (read), so starting the pool read stdin and hung
    # a process whose stdin was an idle pipe (Node's test runner; `producer | python app.py`).
    env = {k: v for k, v in os.environ.items() if k != "NEXPO_NUM_THREADS"}
    code = "import os, nexpo; print(nexpo.get_num_threads(), len(os.sched_getaffinity(0)))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        proc.wait(timeout=60)  # stdin stays open and idle meanwhile
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("importing nexpo hung reading stdin")
    finally:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        out = proc.stdout.read()
        proc.stdout.close()
    threads, cores = map(int, out.split())
    assert threads == min(cores, 1024)


def test_set_and_get_round_trip() -> None:
    for n in (1, 3, 2):
        nexpo.set_num_threads(n)
        assert nexpo.get_num_threads() == n
        assert scheduler.stats()["workers"] == n


@pytest.mark.parametrize("bad", [0, -1, 1025])
def test_out_of_range_is_a_value_error(bad: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 1024"):
        scheduler.set_num_threads(bad)


@pytest.mark.parametrize("bad", [2.0, "2", True, None])
def test_non_int_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="n must be an int"):
        scheduler.set_num_threads(bad)  # type: ignore[arg-type]


def test_stats_shape() -> None:
    scheduler.set_num_threads(2)
    st = scheduler.stats()
    assert set(st) == {"workers", "spawned", "executed", "stolen", "parks"}
    for key in ("spawned", "executed", "stolen", "parks"):
        values = st[key]  # type: ignore[literal-required]
        assert len(values) == st["workers"]
        assert all(isinstance(v, int) and v >= 0 for v in values)


def test_resize_from_many_threads_at_once() -> None:
    errors: list[BaseException] = []

    def resize(n: int) -> None:
        try:
            for _ in range(20):
                scheduler.set_num_threads(n)
                scheduler.stats()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=resize, args=(n,)) for n in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert 1 <= scheduler.get_num_threads() <= 4

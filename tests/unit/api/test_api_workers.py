"""api/workers.py: the supervisor's environment and metrics directory, and a worker that stops when
its supervisor dies (the gateway over HTTP: tests/integration/test_gateway_workers.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest
from nexpo.api import workers

import nexpo

# A stand-in for uvicorn's supervisor: starts one worker that watches it, prints the worker's pid.
_SUPERVISOR = textwrap.dedent(
    """
    import os, subprocess, sys, time
    os.environ["NEXPO_SUPERVISOR_PID"] = str(os.getpid())
    worker = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
    print(worker.pid, flush=True)
    time.sleep(120)
    """
)
_WORKER = textwrap.dedent(
    """
    import signal, sys, time
    from nexpo.api import workers
    if sys.argv[1] == "ignore-sigterm":  # a worker whose drain never ends
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    assert workers.watch_supervisor()
    time.sleep(120)
    """
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["default", "ignore-sigterm"])
def test_a_worker_exits_within_5_s_of_its_supervisors_sigkill(mode: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(nexpo.__file__).resolve().parents[1])}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    supervisor = subprocess.Popen(
        [sys.executable, "-c", _SUPERVISOR, _WORKER, mode], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert supervisor.stdout is not None
        worker = int(supervisor.stdout.readline())
        time.sleep(3)  # let the worker import and start watching (slow machines: generous)
        assert not _gone(worker)
        supervisor.kill()
        supervisor.wait(10)
        killed = time.monotonic()
        while not _gone(worker) and time.monotonic() - killed < 30:
            time.sleep(0.02)
        exit_s = time.monotonic() - killed
        assert _gone(worker), "the orphaned worker kept running"
        assert exit_s < 5, f"the worker needed {exit_s:.2f} s"
    finally:
        supervisor.kill()
        supervisor.wait(10)


def test_only_a_child_of_the_named_supervisor_watches(monkeypatch: pytest.MonkeyPatch) -> None:
    _unset(monkeypatch, workers.SUPERVISOR_ENV)
    assert not workers.watch_supervisor()  # tests, one-process servers
    monkeypatch.setenv(workers.SUPERVISOR_ENV, str(os.getpid()))
    assert not workers.watch_supervisor()  # the supervisor itself (one worker serves in-process)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:  # a live process that is not our parent: we are a worker's subprocess, not a worker
        monkeypatch.setenv(workers.SUPERVISOR_ENV, str(other.pid))
        assert not workers.watch_supervisor()
    finally:
        other.kill()
        other.wait()


@pytest.mark.timeout(120)
def test_a_worker_that_starts_after_its_supervisor_was_killed_but_not_yet_reaped_stops() -> None:
    """The CI race: the supervisor died (a zombie until reaped) while a worker was still importing;
    that worker must not take itself for a worker's subprocess and serve on."""
    env = {**os.environ, "PYTHONPATH": str(Path(nexpo.__file__).resolve().parents[1])}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    late_worker = textwrap.dedent(
        """
        import os, sys, time
        from nexpo.api import workers
        while os.getppid() == int(os.environ["NEXPO_SUPERVISOR_PID"]):
            time.sleep(0.01)  # "still importing" until the supervisor is gone
        workers.watch_supervisor()  # (before the fix: False, and the worker served on)
        time.sleep(60)
        """
    )
    supervisor = subprocess.Popen(  # never reaped until the end: it stays a zombie
        [sys.executable, "-c", _SUPERVISOR, late_worker, "default"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert supervisor.stdout is not None
        worker = int(supervisor.stdout.readline())
        os.kill(supervisor.pid, 9)
        deadline = time.monotonic() + 30
        while not _gone(worker) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _gone(worker), "the late worker kept running beside its zombie supervisor"
    finally:
        supervisor.kill()
        supervisor.wait(10)


def _unset(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Unset ``names`` and restore them after the test even if they were unset before (the code
    under test sets them in ``os.environ``; a plain ``delenv`` of an absent name records nothing)."""
    for name in names:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_supervisor_gets_a_fresh_metrics_dir_and_removes_dead_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _unset(monkeypatch, "PROMETHEUS_MULTIPROC_DIR", workers.SUPERVISOR_ENV)
    stale = tmp_path / f"nexpo-metrics-{_dead_pid()}-abcd"  # left by a supervisor killed with -9
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"x")
    alive = tmp_path / f"nexpo-metrics-{os.getpid()}-efgh"
    alive.mkdir()
    assert workers.prepare_supervisor(1) is None
    assert workers.SUPERVISOR_ENV not in os.environ
    own = workers.prepare_supervisor(2)
    assert own is not None and own.is_dir() and own.name.startswith(f"nexpo-metrics-{os.getpid()}-")
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(own)
    assert os.environ[workers.SUPERVISOR_ENV] == str(os.getpid())
    assert not stale.exists() and alive.exists()


def test_a_given_metrics_dir_is_emptied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "counter_123.db").write_bytes(b"x")
    _unset(monkeypatch, workers.SUPERVISOR_ENV)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert workers.prepare_supervisor(2) is None
    assert list(tmp_path.iterdir()) == []


def test_waiting_for_a_port_that_orphans_still_hold_is_bounded() -> None:
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    port = held.getsockname()[1]
    started = time.monotonic()
    assert not workers.wait_until_bindable("127.0.0.1", port, timeout_s=0.3)
    assert time.monotonic() - started < 5
    threading.Timer(0.3, held.close).start()  # the orphan exits
    assert workers.wait_until_bindable("127.0.0.1", port, timeout_s=10)
    assert workers.wait_until_bindable("127.0.0.1", 0)

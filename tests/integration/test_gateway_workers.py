"""The gateway with two uvicorn workers on a loopback port: every exported counter only grows across
scrapes (native counters included), a killed worker's series leave, the workers stop within 5 s of
their supervisor's SIGKILL, and the port can be bound again right away."""

from __future__ import annotations

import itertools
import os
import re
import signal
import time
from base64 import b64encode
from collections import defaultdict
from pathlib import Path

import httpx
import psutil
import pytest
from nexpo.api.devserver import GatewayProcess

KEY = "workers-key-0123456789"
AUTH = {"X-API-Key": KEY}
SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$")
# counters of the native core (read per process before: 1659 <-> 6225 between scrapes) and of HTTP
MONOTONIC = re.compile(r"^nexpo_(kernel_|scheduler_tasks_|scheduler_parks|http_requests_total)")


def _env(tmp: Path) -> dict[str, str]:
    return {
        "NEXPO_WORKERS": "2",
        "NEXPO_API_KEYS": KEY,
        "NEXPO_STATE_DIR": str(tmp / "state"),
        "NEXPO_RATE_LIMIT_RPS": "0",
        "NEXPO_GRACEFUL_SHUTDOWN_S": "10",
    }


def _workers(supervisor: int) -> list[psutil.Process]:
    children = psutil.Process(supervisor).children()
    return [c for c in children if "resource_tracker" not in " ".join(c.cmdline())]


def _scrape(url: str) -> dict[str, float]:
    with httpx.Client(timeout=30) as fresh:  # a new connection: any worker may answer
        text = fresh.get(url + "/metrics").text
    samples: dict[str, float] = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def _hash_a_few(url: str, count: int) -> None:
    for i in range(count):
        with httpx.Client(timeout=30) as fresh:
            answer = fresh.post(
                url + "/v1/hash", headers=AUTH, json={"data": b64encode(b"hi" * (i + 1)).decode()}
            )
            assert answer.status_code == 200, answer.text


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_until_gone(workers: list[psutil.Process]) -> float:
    """Seconds until every one of ``workers`` (orphaned by a SIGKILL just sent) has exited; < 5."""
    killed = time.monotonic()
    while not all(_gone(w.pid) for w in workers) and time.monotonic() - killed < 30:
        time.sleep(0.02)
    exit_s = time.monotonic() - killed
    assert all(_gone(w.pid) for w in workers), "orphaned workers kept serving"
    assert exit_s < 5, f"the workers needed {exit_s:.2f} s"
    return exit_s


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _assert_monotonic(history: list[dict[str, float]]) -> int:
    series: dict[str, list[float]] = defaultdict(list)
    for samples in history:
        for name, value in samples.items():
            if MONOTONIC.match(name):
                series[name].append(value)
    for name, values in series.items():
        drops = [(a, b) for a, b in itertools.pairwise(values) if b < a]
        assert not drops, f"{name} went down: {drops[:3]} in {values}"
    return len(series)


@pytest.mark.timeout(240)
def test_counters_grow_across_scrapes_and_a_killed_workers_series_leave(tmp_path: Path) -> None:
    with GatewayProcess(_env(tmp_path), log_path=tmp_path / "server.log") as server:
        assert server.process is not None
        history = []
        hashed = 0
        for _ in range(15):
            _hash_a_few(server.url, 4)
            hashed += 4
            history.append(_scrape(server.url))
        checked = _assert_monotonic(history)
        assert checked >= 10  # kernels, scheduler workers, HTTP routes
        time.sleep(2)  # every worker has flushed its native counters since
        calls = _scrape(server.url)['nexpo_kernel_calls_total{kernel="sha256"}']
        assert calls >= hashed  # both workers' calls, not the scraped one's share

        victim = _workers(server.process.pid)[0]
        victim_label = f'pid="{victim.pid}"'
        assert any(victim_label in name for name in history[-1] if "resident_memory" in name)
        victim.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # uvicorn starts a replacement; the scrape prunes the dead
            samples = _scrape(server.url)
            history.append(samples)
            if not any(victim_label in name for name in samples):
                break
            time.sleep(0.2)
        assert not any(victim_label in name for name in history[-1]), "the dead worker's gauges stayed"
        _hash_a_few(server.url, 4)
        history.append(_scrape(server.url))
        _assert_monotonic(history)  # its counters stay in the sums


@pytest.mark.timeout(240)
def test_workers_stop_after_the_supervisors_sigkill_and_the_port_is_free(tmp_path: Path) -> None:
    with GatewayProcess(_env(tmp_path), log_path=tmp_path / "first.log") as first:
        assert first.process is not None
        workers = _workers(first.process.pid)
        assert len(workers) == 2
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
        exit_s = _wait_until_gone(workers)
        print(f"workers gone {exit_s:.2f} s after the supervisor's SIGKILL")
        with GatewayProcess(_env(tmp_path), log_path=tmp_path / "second.log", port=first.port) as second:
            assert httpx.get(second.url + "/readyz", timeout=10).status_code == 200
            assert second.process is not None
            orphans = _workers(second.process.pid)
            second.process.send_signal(signal.SIGKILL)  # and this time restart without waiting
            second.process.wait(10)
            with GatewayProcess(_env(tmp_path), log_path=tmp_path / "third.log", port=first.port) as third:
                # the orphans may have answered the readiness probe: check once they are gone
                _wait_until_gone(orphans)
                assert third.process is not None
                deadline = time.monotonic() + 60
                while not _ready(third.url):
                    assert third.process.poll() is None, "the restart failed (address already in use?)"
                    assert time.monotonic() < deadline, "the restarted server never became ready"
                    time.sleep(0.05)
    assert not any(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"nexpo-metrics-{first.process.pid}-*")), (
        "the killed supervisor's metrics directory was not removed by the next start"
    )

"""Two uvicorn workers and one real redis-server (Debian's; `make test` installs it): together the
workers allow a key about its configured rate, not twice it; when Redis is killed every request is
still answered (200 or 429), each worker logs one line and the backend metric flips to local; when
Redis is back, the workers share limits again. The measured figures are printed (pytest -s)."""

from __future__ import annotations

import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from nexpo.api.devserver import GatewayProcess, RedisServer

KEY = "shared-limits-key-0123456789"
AUTH = {"X-API-Key": KEY}
RATE, BURST = 8.0, 4  # below what fresh-connection clients reach on a loaded 2-core machine
BACKEND_SAMPLE = re.compile(r'^nexpo_rate_limit_backend\{backend="(redis|local)"\} ([0-9.e+-]+)$', re.M)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server not found: `make test` installs it (as root), or apt-get install it")
    with RedisServer() as server:
        yield server


def _env(tmp: Path, redis_url: str | None, rate: float = RATE, burst: int = BURST) -> dict[str, str]:
    env = {
        "NEXPO_WORKERS": "2",
        "NEXPO_API_KEYS": KEY,
        "NEXPO_STATE_DIR": str(tmp / "state"),
        "NEXPO_RATE_LIMIT_RPS": str(rate),
        "NEXPO_RATE_LIMIT_BURST": str(burst),
        "NEXPO_GRACEFUL_SHUTDOWN_S": "5",
        # a loaded CI machine must not pass for a slow Redis: a killed one is refused at once
        "NEXPO_REDIS_TIMEOUT_S": "1.0",
        "NEXPO_LOG_LEVEL": "info",
    }
    if redis_url:
        env["NEXPO_REDIS_URL"] = redis_url
    return env


def _ping(url: str) -> int:
    """One request on a fresh connection, so that either worker may take it."""
    with httpx.Client(timeout=10) as fresh:
        return fresh.get(url + "/v1/ping", headers=AUTH).status_code


def _hammer(url: str, seconds: float, threads: int = 6) -> Counter[int]:
    """Requests from ``threads`` clients for ``seconds``; the status codes counted."""
    deadline = time.monotonic() + seconds

    def client() -> Counter[int]:
        codes: Counter[int] = Counter()
        while time.monotonic() < deadline:
            codes[_ping(url)] += 1
        return codes

    with ThreadPoolExecutor(threads) as pool:
        return sum((f.result() for f in [pool.submit(client) for _ in range(threads)]), Counter())


def _backends(url: str) -> dict[str, float]:
    with httpx.Client(timeout=10) as fresh:
        text = fresh.get(url + "/metrics").text
    return {name: float(value) for name, value in BACKEND_SAMPLE.findall(text)}


def _both_workers_on_redis(url: str) -> dict[str, float]:
    """The backend gauges once both workers are up (the first one ready answers /readyz)."""
    for _ in range(200):
        found = _backends(url)
        if found.get("redis") == 2.0:
            break
        time.sleep(0.1)
    return found


def _allowed_rate(url: str, seconds: float) -> tuple[float, Counter[int]]:
    codes = _hammer(url, seconds)
    assert set(codes) <= {200, 429}, codes
    return codes[200] / seconds, codes


@pytest.mark.timeout(180)
def test_two_workers_share_one_rate_through_redis(tmp_path: Path, redis_server: RedisServer) -> None:
    seconds = 5.0
    expected = (BURST + RATE * seconds) / seconds  # what one bucket allows in the window, per second
    with GatewayProcess(_env(tmp_path, None), log_path=tmp_path / "local.log") as server:
        local_rate, local_codes = _allowed_rate(server.url, seconds)
    with GatewayProcess(_env(tmp_path, redis_server.url), log_path=tmp_path / "redis.log") as server:
        assert _both_workers_on_redis(server.url) == {"redis": 2.0, "local": 0.0}
        shared_rate, shared_codes = _allowed_rate(server.url, seconds)
    print(
        f"\nconfigured {RATE:.0f}/s burst {BURST} over {seconds:.0f} s (≈{expected:.0f}/s allowed by one "
        f"bucket): per worker {local_rate:.1f}/s {dict(local_codes)}; "
        f"through Redis {shared_rate:.1f}/s {dict(shared_codes)}"
    )
    assert shared_codes[429] > 0, "the clients must outrun the limit for the test to mean anything"
    assert 0.6 * expected <= shared_rate <= 1.25 * expected


@pytest.mark.timeout(180)
def test_killed_redis_falls_back_per_worker_then_recovers(tmp_path: Path, redis_server: RedisServer) -> None:
    log_path = tmp_path / "server.log"
    with GatewayProcess(_env(tmp_path, redis_server.url, rate=1000, burst=2000), log_path=log_path) as server:
        assert _both_workers_on_redis(server.url) == {"redis": 2.0, "local": 0.0}
        codes = _hammer(server.url, 1.0)
        assert set(codes) == {200}

        redis_server.stop()  # SIGKILL
        killed = time.monotonic()
        codes = Counter()
        for _ in range(300):  # until both workers have noticed (each needs a request to)
            codes += _hammer(server.url, 0.2, threads=4)
            if _backends(server.url).get("local") == 2.0:
                break
        fallback_s = time.monotonic() - killed
        assert _backends(server.url) == {"redis": 0.0, "local": 2.0}
        codes += _hammer(server.url, 1.0)  # more requests, no more log lines
        assert set(codes) == {200}, codes  # never a 500 because of Redis

        redis_server.start()  # the same port
        restarted = time.monotonic()
        for _ in range(300):
            if _backends(server.url).get("redis") == 2.0:
                break
            _hammer(server.url, 0.1, threads=2)
        recovery_s = time.monotonic() - restarted
        assert _backends(server.url) == {"redis": 2.0, "local": 0.0}
        with httpx.Client(timeout=10) as fresh:
            metrics = fresh.get(server.url + "/metrics").text
        assert "nexpo_rate_limit_fallbacks_total 2.0" in metrics
    log = log_path.read_text()
    print(
        f"\n{sum(codes.values())} requests while Redis was down, all 200; both workers on local limits "
        f"{fallback_s:.2f} s after the kill; back on Redis {recovery_s:.2f} s after the restart"
    )
    assert log.count("limiting per worker until it is back") == 2  # one line per worker, not per request
    assert log.count("limits are shared again") == 2

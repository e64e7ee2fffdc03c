"""api/middleware/shared_rate_limit.py against a real redis-server (Debian's; `make test` installs it):
the Lua script's bucket semantics, atomicity and key expiry; fallback to per-worker limits when
Redis is gone or frozen, one log line per switch, and the way back."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, is_problem, make_settings
from nexpo.api.devserver import RedisServer, free_port
from nexpo.api.main import create_app
from nexpo.api.middleware.shared_rate_limit import BACKEND, FALLBACKS, LOCAL, REDIS, SharedBuckets
from nexpo.api.serve_options import ConfigError, load_settings


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server not found: `make test` installs it (as root), or apt-get install it")
    with RedisServer() as server:
        yield server


def buckets(url: str, rate: float, burst: int, prefix: str, timeout_s: float = 0.2) -> SharedBuckets:
    return SharedBuckets(url, rate, burst, timeout_s=timeout_s, pool_size=8, key_prefix=prefix)


def gauge(backend: str) -> float:
    value: float = BACKEND.labels(backend)._value.get()
    return value


def switch_lines(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    text = [r.getMessage() for r in caplog.records if r.name == "api"]
    return sum("limiting per worker" in t for t in text), sum("shared again" in t for t in text)


async def back_on_redis(limiter: SharedBuckets, within_s: float = 10.0) -> None:
    for _ in range(int(within_s / 0.05)):
        if limiter.backend == REDIS:
            return
        await asyncio.sleep(0.05)


# --- the Lua script ----------------------------------------------------------------------------


async def test_burst_then_refusal_with_the_wait_for_one_token(redis_server: RedisServer) -> None:
    limiter = buckets(redis_server.url, rate=1.0, burst=3, prefix="t-burst:")
    await limiter.start()
    try:
        assert [await limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
        wait = await limiter.take("k")
        assert 0.9 < wait <= 1.0  # one token takes 1/rate seconds (less the time spent since)
        assert await limiter.take("other") == 0.0  # per identity
        assert limiter.backend == REDIS
    finally:
        await limiter.aclose()


async def test_tokens_refill_at_the_rate_up_to_the_burst(redis_server: RedisServer) -> None:
    limiter = buckets(redis_server.url, rate=20.0, burst=2, prefix="t-refill:")
    await limiter.start()
    try:
        assert [await limiter.take("k") for _ in range(2)] == [0.0, 0.0]
        assert await limiter.take("k") > 0
        await asyncio.sleep(0.06)  # 1.2 tokens
        assert await limiter.take("k") == 0.0
        assert await limiter.take("k") > 0
        await asyncio.sleep(0.5)  # 10 tokens' worth, capped at the burst of 2
        assert [await limiter.take("k") > 0 for _ in range(3)] == [False, False, True]
    finally:
        await limiter.aclose()


async def test_bucket_keys_expire_when_the_bucket_is_full_again(redis_server: RedisServer) -> None:
    limiter = buckets(redis_server.url, rate=10.0, burst=5, prefix="t-ttl:")
    await limiter.start()
    try:
        await limiter.take("k")
        ttl_ms = await limiter._client.pttl("t-ttl:k")
        assert 0 < ttl_ms <= 100  # one token spent: full again after 1/rate
        for _ in range(4):
            await limiter.take("k")
        assert 400 < await limiter._client.pttl("t-ttl:k") <= 500  # burst/rate when empty
        await asyncio.sleep(0.6)
        assert await limiter._client.exists("t-ttl:k") == 0
    finally:
        await limiter.aclose()


async def test_concurrent_takes_never_exceed_the_burst(redis_server: RedisServer) -> None:
    """Atomic: 200 requests at once from 8 connections get exactly the burst."""
    limiter = buckets(redis_server.url, rate=0.01, burst=25, prefix="t-atomic:", timeout_s=2.0)
    await limiter.start()
    try:
        waits = await asyncio.gather(*(limiter.take("k") for _ in range(200)))
        assert sum(w == 0.0 for w in waits) == 25
        assert limiter.backend == REDIS
    finally:
        await limiter.aclose()


async def test_a_foreign_value_in_a_bucket_key_counts_as_a_full_bucket(redis_server: RedisServer) -> None:
    limiter = buckets(redis_server.url, rate=1.0, burst=2, prefix="t-junk:")
    await limiter.start()
    try:
        await limiter._client.set("t-junk:k", b"not a number")
        assert [await limiter.take("k") for _ in range(2)] == [0.0, 0.0]
        assert await limiter.take("k") > 0
        await limiter._client.script_flush()  # as after a Redis restart: the script is loaded again
        assert await limiter.take("k") > 0
        assert limiter.backend == REDIS
    finally:
        await limiter.aclose()


def test_two_apps_share_one_budget(tmp_path: Path, redis_server: RedisServer) -> None:
    """Two gateways (as two workers would) on one Redis: together they allow the burst, not twice it."""
    settings = make_settings(
        tmp_path,
        rate_limit_rps=0.01,
        rate_limit_burst=4,
        redis_url=redis_server.url,
        redis_key_prefix="t-apps:",
    )
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        codes = [c.get("/v1/ping", headers=AUTH).status_code for c in (one, two) * 4]
        assert codes == [200] * 4 + [429] * 4
        answer = is_problem(two.get("/v1/ping", headers=AUTH), 429)
        assert "rate limit" in answer["detail"]


# --- fallback and recovery ---------------------------------------------------------------------


async def test_unreachable_redis_falls_back_once_then_recovers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="api")
    server = RedisServer()  # not started yet: nothing listens on its port
    limiter = buckets(server.url, rate=1.0, burst=2, prefix="t-down:")
    fallbacks = FALLBACKS._value.get()
    await limiter.start()
    try:
        assert limiter.backend == LOCAL
        assert gauge(LOCAL) == 1 and gauge(REDIS) == 0
        waits = [await limiter.take("k") for _ in range(20)]  # served by the local buckets
        assert waits[:2] == [0.0, 0.0] and all(w > 0 for w in waits[2:])
        assert FALLBACKS._value.get() == fallbacks + 1
        assert switch_lines(caplog) == (1, 0)  # one line, not one per request
        server.start()
        await back_on_redis(limiter)
        assert limiter.backend == REDIS
        assert gauge(REDIS) == 1 and gauge(LOCAL) == 0
        assert switch_lines(caplog) == (1, 1)
        assert await limiter.take("k") == 0.0  # the Redis bucket is new
    finally:
        await limiter.aclose()
        server.stop()


async def test_a_frozen_redis_costs_one_timeout_then_local_limits(caplog: pytest.LogCaptureFixture) -> None:
    """SIGSTOP: connections stay open but nothing answers (a slow Redis)."""
    caplog.set_level(logging.INFO, logger="api")
    with RedisServer() as server:
        limiter = buckets(server.url, rate=100.0, burst=100, prefix="t-frozen:", timeout_s=0.2)
        await limiter.start()
        assert server.process is not None
        try:
            assert await limiter.take("k") == 0.0
            os.kill(server.process.pid, signal.SIGSTOP)
            started = time.monotonic()
            waits = await asyncio.gather(*(limiter.take("k") for _ in range(50)))
            assert time.monotonic() - started < 2.0  # bounded by the timeout, not by Redis
            assert all(w == 0.0 for w in waits)
            assert limiter.backend == LOCAL
            assert switch_lines(caplog) == (1, 0)
            os.kill(server.process.pid, signal.SIGCONT)
            await back_on_redis(limiter)
            assert limiter.backend == REDIS
            assert switch_lines(caplog) == (1, 1)
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
            await limiter.aclose()


def test_gateway_serves_while_redis_is_down(tmp_path: Path) -> None:
    """Never a 500 for Redis: an app whose Redis never answers limits per worker and is ready."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings = make_settings(tmp_path, rate_limit_rps=0.01, rate_limit_burst=2, redis_url=url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        codes = [client.get("/v1/ping", headers=AUTH).status_code for _ in range(4)]
        assert codes == [200, 200, 429, 429]
        metrics = client.get("/metrics").text
        assert 'nexpo_rate_limit_backend{backend="local"} 1.0' in metrics


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://redis:6379", "the scheme must be redis, rediss or unix"),
        ("redis://", "no host"),
        ("redis://redis:99999", "out of range"),
        ("redis://:hunter2@redis/zero", "database number"),
        ("unix://", "no socket path"),
        ("redis://redis/0?socket_timeout=soon", "socket_timeout"),
    ],
)
def test_a_bad_redis_url_is_one_line_without_the_password(
    url: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEXPO_REDIS_URL", url)
    with pytest.raises(ConfigError) as error:
        load_settings({})
    message = str(error.value)
    assert message.startswith("NEXPO_REDIS_URL must be a redis://")
    assert reason in message
    assert "\n" not in message
    assert "hunter2" not in message


def test_good_redis_urls_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    for url in ("redis://redis:6379/0", "rediss://u:p@redis.example.com", "unix:///run/redis.sock"):
        monkeypatch.setenv("NEXPO_REDIS_URL", url)
        assert load_settings({}).redis_url == url
    monkeypatch.setenv("NEXPO_REDIS_URL", "")
    assert load_settings({}).redis_url is None
    assert "p@" not in repr(load_settings({"redis_url": "redis://u:p@redis"}))


def test_nexpo_serve_exits_2_on_a_bad_redis_url(capsys: pytest.CaptureFixture[str]) -> None:
    from nexpo import cli

    assert cli.main(["serve", "--redis-url", "redis://:hunter2@redis:port/0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nexpo serve: --redis-url must be a redis://") and err.count("\n") == 1
    assert "hunter2" not in err

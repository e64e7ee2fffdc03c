"""api/middleware/{body_limit,rate_limit,timeout}.py: 413, 429 with Retry-After, 504."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient
from gateway_helpers import AUTH, is_problem, make_settings
from nexpo.api.main import create_app
from nexpo.api.middleware.rate_limit import TokenBuckets


def test_declared_oversized_body_is_413_before_reading(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, max_body_bytes=1024))) as c:
        payload = {"data": base64.b64encode(b"x" * 2000).decode()}
        body = is_problem(c.post("/v1/hash", headers=AUTH, json=payload), 413)
        assert "1024" in body["detail"]


def test_streamed_oversized_body_is_413(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 512

    with TestClient(
        create_app(make_settings(tmp_path, max_body_bytes=1024)), raise_server_exceptions=False
    ) as c:
        response = c.post(
            "/v1/matmul", headers={**AUTH, "content-type": "application/json"}, content=chunks()
        )
        is_problem(response, 413)


def test_stream_endpoint_has_its_own_limit(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_body_bytes=1024, max_stream_bytes=4096)
    with TestClient(create_app(settings)) as c:
        assert c.post("/v1/hash/stream", headers=AUTH, content=b"z" * 3000).status_code == 200
        is_problem(c.post("/v1/hash/stream", headers=AUTH, content=b"z" * 5000), 413)


def test_token_bucket_refills_at_the_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k") == 0.5  # one token takes 1/rate seconds
    assert buckets.take("other") == 0.0  # per identity
    now[0] += 0.5
    assert buckets.take("k") == 0.0
    now[0] += 100
    assert [buckets.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]  # capped at burst


def test_rate_limit_answers_429_with_retry_after_per_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_keys="a,b", rate_limit_rps=0.5, rate_limit_burst=2)
    with TestClient(create_app(settings)) as c:
        a, b = {"X-API-Key": "a"}, {"X-API-Key": "b"}
        assert [c.get("/v1/ping", headers=a).status_code for _ in range(2)] == [200, 200]
        response = c.get("/v1/ping", headers=a)
        is_problem(response, 429)
        assert int(response.headers["retry-after"]) >= 1
        assert c.get("/v1/ping", headers=b).status_code == 200
        assert c.get("/livez").status_code == 200  # probes are not limited


def test_rate_limit_covers_v2_but_not_its_health_probes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_keys="a", rate_limit_rps=0.5, rate_limit_burst=2)
    with TestClient(create_app(settings)) as c:
        a = {"X-API-Key": "a"}
        assert [c.get("/v2", headers=a).status_code for _ in range(2)] == [200, 200]
        response = c.get("/v2", headers=a)
        assert response.status_code == 429
        assert "error" in response.json()  # the protocol's error shape on /v2
        assert [c.get("/v2/health/live").status_code for _ in range(5)] == [200] * 5


def test_slow_request_gets_504(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, request_timeout_s=1.0))

    @app.get("/v1/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(60)
        return {"status": "late"}

    with TestClient(app) as c:
        body = is_problem(c.get("/v1/slow", headers=AUTH), 504)
        assert "within 1 s" in body["detail"]
        assert c.get("/v1/ping", headers=AUTH).status_code == 200


def test_deadline_is_per_request_and_swallowed_cancellation_is_reset(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, request_timeout_s=0.5))

    @app.get("/v1/stubborn")
    async def stubborn() -> dict[str, str]:
        with contextlib.suppress(asyncio.CancelledError):  # swallows the cancellation, finishes anyway
            await asyncio.sleep(60)
        current = asyncio.current_task()
        assert current is not None
        return {"status": "finished", "cancelling": str(current.cancelling())}

    with TestClient(app) as c:
        assert c.get("/v1/stubborn", headers=AUTH).json() == {"status": "finished", "cancelling": "1"}
        for _ in range(3):  # later requests are unaffected
            assert c.get("/v1/ping", headers=AUTH).status_code == 200

"""api/hot_lane.py: the hot lane answers exactly as the middleware chain behind it.

Each request is sent to the gateway twice: as built (the lane in front) and with the lane taken out
of the same app's middleware (the chain answers everything). Status, headers (but the random
``traceparent``) and body must agree, refusals included: those the lane hands to the chain (401,
413, 400) and those it answers itself (429, 504).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from gateway_helpers import API_KEY, AUTH, make_settings
from nexpo.api.hot_lane import HotLane
from nexpo.api.main import create_app
from nexpo.api.settings import DEFAULT_MODELS_DIR, Settings

ROW = [0.5] * 64
V2_JSON = orjson.dumps({"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": [1, 64], "data": ROW}]})
V1_JSON = orjson.dumps({"inputs": [ROW]})
BIG = orjson.dumps({"inputs": [ROW] * 200})  # over the 4 KiB body limit

CASES: list[tuple[str, str, bytes | None, dict[str, str]]] = [
    ("POST", "/v2/models/digits/infer", V2_JSON, AUTH),
    ("POST", "/v2/models/digits/versions/1/infer", V2_JSON, AUTH),
    ("POST", "/v2/models/nope/infer", V2_JSON, AUTH),
    ("POST", "/v2/models/digits/infer", b"{not json", AUTH),
    ("POST", "/v2/models/digits/infer", V2_JSON, {}),  # no key: 401 from the chain, v2-shaped
    ("POST", "/v2/models/digits/infer", V2_JSON, {"X-API-Key": "wrong"}),
    ("POST", "/v2/models/digits/infer", V2_JSON, {"Authorization": f"Bearer {API_KEY}"}),
    ("POST", "/v2/models/digits/infer", BIG, AUTH),  # 413 from Content-Length
    ("POST", "/v1/models/digits/infer", V1_JSON, AUTH),
    ("POST", "/v1/models/digits/infer", V1_JSON, {}),
    ("POST", "/v1/models/digits/infer", BIG, AUTH),
    ("POST", "/v1/hash", orjson.dumps({"data": "YWJj"}), AUTH),
    ("GET", "/v1/ping", None, AUTH),
    ("GET", "/v1/ping", None, {"X-API-Key": "wrong"}),
    ("GET", "/v2/health/ready", None, {}),  # not a hot route: the chain either way
]


def _without_lane(app: Any) -> Any:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not HotLane]
    return app


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    repo = tmp_path / "repo"
    (repo / "digits" / "1").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEFAULT_MODELS_DIR / "digits.safetensors", repo / "digits" / "1" / "model.safetensors")
    return make_settings(
        tmp_path, model_repository=repo, repository_poll_s=0, max_body_bytes=4096, **overrides
    )


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, TestClient]]:
    settings = _settings(tmp_path_factory.mktemp("lane"))
    with TestClient(create_app(settings)) as lane, TestClient(_without_lane(create_app(settings))) as chain:
        yield lane, chain


def _answer(client: TestClient, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> Any:
    response = client.request(method, path, content=body, headers=headers)
    kept = sorted((k, v) for k, v in response.headers.items() if k != "traceparent")
    assert "traceparent" in response.headers
    return response.status_code, kept, response.content


@pytest.mark.parametrize(("method", "path", "body", "headers"), CASES)
def test_the_lane_answers_as_the_chain(
    both: tuple[TestClient, TestClient], method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> None:
    lane, chain = both
    assert _answer(lane, method, path, body, headers) == _answer(chain, method, path, body, headers)


def test_the_gateway_has_the_lane_unless_tracing_or_a_root_path_needs_the_chain(tmp_path: Path) -> None:
    def has_lane(**overrides: Any) -> bool:
        return any(m.cls is HotLane for m in create_app(_settings(tmp_path, **overrides)).user_middleware)

    assert has_lane()
    assert not has_lane(root_path="/api")
    assert not any(
        m.cls is HotLane for m in create_app(_settings(tmp_path), fast_paths=False).user_middleware
    )


def test_lane_requests_are_counted_and_traced(both: tuple[TestClient, TestClient]) -> None:
    lane, _ = both
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = lane.post(
        "/v2/models/digits/infer", content=V2_JSON, headers={**AUTH, "traceparent": incoming}
    )
    assert response.status_code == 200
    trace = response.headers["traceparent"]
    assert trace.startswith("00-0af7651916cd43dd8448eb211c80319c-") and trace.endswith("-01")
    assert trace != incoming  # a new span id in the same trace
    metrics = lane.get("/metrics").text
    assert 'nexpo_http_requests_total{method="POST",route="/v2/models/{name}/infer",status="200"}' in metrics


def test_the_rate_limit_is_one_budget_for_the_lane_and_the_chain(tmp_path: Path) -> None:
    settings = _settings(tmp_path, rate_limit_rps=0.001, rate_limit_burst=2)
    with TestClient(create_app(settings)) as client:
        assert client.get("/v1/ping", headers=AUTH).status_code == 200  # the lane
        assert client.get("/v2/models/digits", headers=AUTH).status_code == 200  # the chain
        refused = client.post("/v2/models/digits/infer", content=V2_JSON, headers=AUTH)
        assert refused.status_code == 429 and refused.json() == {
            "error": "rate limit exceeded for this API key"
        }
        assert int(refused.headers["retry-after"]) >= 1
        refused = client.get("/v1/ping", headers=AUTH)
        assert refused.status_code == 429 and refused.headers["content-type"] == "application/problem+json"
        assert client.get("/v2/models/digits", headers=AUTH).status_code == 429


def test_a_request_past_its_deadline_gets_504_in_its_protocol_shape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nexpo.api.v2 import hot_infer

    async def slow(*_: object) -> tuple[bytes, int | None]:
        await asyncio.sleep(5)
        return b"{}", None

    monkeypatch.setattr(hot_infer, "answer", slow)
    with TestClient(create_app(_settings(tmp_path, request_timeout_s=0.2))) as client:
        response = client.post("/v2/models/digits/infer", content=V2_JSON, headers=AUTH)
    assert response.status_code == 504
    assert response.json() == {"error": "request not completed within 0.2 s"}
    assert "traceparent" in response.headers

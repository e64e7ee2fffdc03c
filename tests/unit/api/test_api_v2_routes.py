"""/v2 over the ASGI app: the protocol's error shape (from middleware too), auth and admin scope,
bounded bodies, binary framing over HTTP, readiness, and per-model metrics."""

from __future__ import annotations

import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from gateway_helpers import API_KEY, AUTH, make_settings
from nexpo.api.main import create_app
from nexpo.api.settings import DEFAULT_MODELS_DIR

ADMIN = {"X-API-Key": "admin-key-0123"}
INFER = "/v2/models/digits/infer"


def _json(rows: int = 1) -> dict[str, object]:
    return {
        "inputs": [{"name": "INPUT", "datatype": "FP32", "shape": [rows, 64], "data": [0.5] * (64 * rows)}]
    }


@pytest.fixture
def v2(tmp_path: Path) -> Iterator[TestClient]:
    repo = tmp_path / "repo"
    (repo / "digits" / "1").mkdir(parents=True)
    shutil.copyfile(DEFAULT_MODELS_DIR / "digits.safetensors", repo / "digits" / "1" / "model.safetensors")
    settings = make_settings(
        tmp_path,
        model_repository=repo,
        repository_poll_s=0,
        admin_api_keys="admin-key-0123",
        max_body_bytes=64 * 1024,
        max_infer_rows=16,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def _error(response: object, status: int) -> str:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    return str(body["error"])


def test_health_is_open_everything_else_needs_a_key(v2: TestClient) -> None:
    assert v2.get("/v2/health/live").status_code == 200
    assert v2.get("/v2/health/ready").status_code == 200
    assert "missing API key" in _error(v2.get("/v2"), 401)
    assert "invalid API key" in _error(v2.post(INFER, json=_json(), headers={"X-API-Key": "nope"}), 401)
    assert v2.get("/v2", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
    assert v2.get("/v2", headers=ADMIN).status_code == 200  # an admin key is a key
    assert _error(v2.get("/v2/no/such/route", headers=AUTH), 404)


def test_errors_of_the_protocol(v2: TestClient) -> None:
    assert "unknown model" in _error(v2.post("/v2/models/nope/infer", headers=AUTH, json=_json()), 404)
    assert "unknown version 2" in _error(v2.get("/v2/models/digits/versions/2", headers=AUTH), 404)
    assert "positive integer" in _error(v2.get("/v2/models/digits/versions/x/ready", headers=AUTH), 400)
    assert "limit of 16" in _error(v2.post(INFER, headers=AUTH, json=_json(17)), 400)
    assert "exceeds the limit" in _error(v2.post(INFER, headers=AUTH, content=b"x" * 70_000), 413)
    assert "not valid JSON" in _error(v2.post(INFER, headers=AUTH, content=b"{"), 400)
    too_many = b'{"inputs": [' + b"0," * 30_000 + b"0]}"
    assert "more than" in _error(v2.post(INFER, headers=AUTH, content=too_many), 400)


@pytest.mark.parametrize("value", ["-1", "abc", "999999", "1e3"])
def test_bad_header_lengths_over_http(v2: TestClient, value: str) -> None:
    headers = {**AUTH, "Inference-Header-Content-Length": value}
    assert _error(v2.post(INFER, headers=headers, content=orjson.dumps(_json())), 400)


def test_binary_in_binary_out(v2: TestClient) -> None:
    x = np.random.default_rng(1).random((3, 64), dtype=np.float32)
    head = orjson.dumps(
        {
            "id": "b1",
            "inputs": [
                {
                    "name": "INPUT",
                    "datatype": "FP32",
                    "shape": [3, 64],
                    "parameters": {"binary_data_size": x.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    headers = {**AUTH, "Inference-Header-Content-Length": str(len(head))}
    response = v2.post(INFER, headers=headers, content=head + x.tobytes())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    json_length = int(response.headers["inference-header-content-length"])
    doc = orjson.loads(response.content[:json_length])
    assert doc["id"] == "b1"
    (out,) = doc["outputs"]
    probabilities = np.frombuffer(response.content[json_length:], np.float32).reshape(out["shape"])
    reference = v2.post(INFER, headers=AUTH, json={"inputs": [{**_json(3)["inputs"][0], "data": x.tolist()}]})  # type: ignore[index]
    np.testing.assert_allclose(probabilities.reshape(-1), reference.json()["outputs"][0]["data"], rtol=1e-6)
    short = head + x.tobytes()[:-4]
    assert "past the end" in _error(v2.post(INFER, headers=headers, content=short), 400)


def test_admin_scope_and_repository(v2: TestClient) -> None:
    assert "admin API key" in _error(v2.post("/v2/repository/models/digits/unload", headers=AUTH), 403)
    assert v2.post("/v2/repository/models/digits/unload", headers=ADMIN).status_code == 200
    assert "unknown model" in _error(v2.get("/v2/models/digits/ready", headers=AUTH), 404)
    assert v2.get("/v2/health/ready").status_code == 200  # an unloaded model is not a failed one
    assert v2.post("/v2/repository/index", headers=AUTH, json={"ready": True}).json() == []
    assert "not supported" in _error(
        v2.post("/v2/repository/models/digits/load", headers=ADMIN, json={"parameters": {"config": "{}"}}),
        400,
    )
    assert v2.post("/v2/repository/models/digits/load", headers=ADMIN).status_code == 200
    assert v2.get("/v2/models/digits/ready", headers=AUTH).status_code == 200
    assert "no model" in _error(v2.post("/v2/repository/models/ghost/load", headers=ADMIN), 404)


def test_repository_control_is_off_without_admin_keys(client: TestClient) -> None:
    assert "NEXPO_ADMIN_API_KEYS" in _error(
        client.post("/v2/repository/models/digits/unload", headers=AUTH), 403
    )


def _counters(v2: TestClient) -> dict[str, float]:
    values = {}
    for line in v2.get("/metrics").text.splitlines():
        if line.startswith("nexpo_model_inference_") and '{model="digits",version="1"}' in line:
            name, _, value = line.partition('{model="digits",version="1"} ')
            values[name.removeprefix("nexpo_model_inference_")] = float(value)
    return values


def test_per_model_metrics(v2: TestClient) -> None:
    before = _counters(v2)
    assert v2.post(INFER, headers=AUTH, json=_json(2)).status_code == 200
    v2.post(INFER, headers=AUTH, json=_json(17))
    after = _counters(v2)
    delta = {name: after[name] - before.get(name, 0.0) for name in after}
    assert delta["request_success_total"] == 1
    assert delta["request_failure_total"] == 1
    assert delta["count_total"] == 2  # rows
    assert delta["exec_count_total"] == 1
    assert delta["compute_infer_duration_seconds_total"] > 0


def test_bytes_binary_input_over_http_is_checked(v2: TestClient) -> None:
    raw = struct.pack("<I", 100) + b"x"
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "INPUT",
                    "datatype": "BYTES",
                    "shape": [1],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    )
    headers = {**AUTH, "Inference-Header-Content-Length": str(len(head))}
    assert "runs past" in _error(v2.post(INFER, headers=headers, content=head + raw), 400)

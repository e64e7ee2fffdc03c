"""Triton's statistics extension over REST: the shape tritonclient reads, scopes, and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from gateway_helpers import AUTH

KINDS = (
    "success",
    "fail",
    "queue",
    "compute_input",
    "compute_infer",
    "compute_output",
    "cache_hit",
    "cache_miss",
)


def _infer(client: TestClient, rows: int) -> None:
    raw = np.zeros((rows, 64), np.float32).tobytes()
    header = (
        b'{"inputs":[{"name":"INPUT","datatype":"FP32","shape":[%d,64],"parameters":{"binary_data_size":%d}}]}'
        % (rows, len(raw))
    )
    headers = {**AUTH, "Inference-Header-Content-Length": str(len(header))}
    assert client.post("/v2/models/digits/infer", content=header + raw, headers=headers).status_code == 200


def _stats(client: TestClient, path: str) -> Any:
    response = client.get(path, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()["model_stats"]


def test_shape_and_counts(client: TestClient) -> None:
    (before,) = _stats(client, "/v2/models/digits/stats")
    _infer(client, 3)
    (entry,) = _stats(client, "/v2/models/digits/versions/1/stats")
    assert entry["name"] == "digits" and entry["version"] == "1"
    assert set(entry["inference_stats"]) == set(KINDS)
    for kind in KINDS:
        assert set(entry["inference_stats"][kind]) == {"count", "ns"}
    success = entry["inference_stats"]["success"]
    assert success["count"] == before["inference_stats"]["success"]["count"] + 1 and success["ns"] > 0
    assert entry["inference_count"] == before["inference_count"] + 3
    assert entry["execution_count"] >= before["execution_count"] + 1
    assert entry["last_inference"] > 0
    assert any(b["batch_size"] == 3 for b in entry["batch_stats"])
    assert _stats(client, "/v2/models/stats") == [entry]  # every model: the one there is
    assert client.get("/v2", headers=AUTH).json()["extensions"].count("statistics") == 1


def test_errors(client: TestClient) -> None:
    assert client.get("/v2/models/nope/stats", headers=AUTH).json() == {"error": "no loaded model 'nope'"}
    assert client.get("/v2/models/digits/versions/2/stats", headers=AUTH).status_code == 404
    bad = client.get("/v2/models/digits/versions/x/stats", headers=AUTH)
    assert bad.status_code == 400 and "positive integer" in bad.json()["error"]
    assert client.get("/v2/models/digits/stats").status_code == 401

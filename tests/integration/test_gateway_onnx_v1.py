"""A real gateway serving an ONNX model dropped into NEXPO_MODELS_DIR: named tensors over /v1 with
micro-batching, and Triton's statistics extension read by tritonclient over HTTP and gRPC."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from nexpo.api.devserver import GatewayProcess, free_port
from nexpo.api.settings import DEFAULT_MODELS_DIR

pytest.importorskip("onnx")
pytest.importorskip("nexpo.inference")
httpclient = pytest.importorskip("tritonclient.http")
grpcclient = pytest.importorskip("tritonclient.grpc")
from tritonclient.utils import InferenceServerException  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "api"))
from onnx_models import embedding_model, pooled  # noqa: E402

KEY = "onnx-user-key"
HEADERS = {"X-API-Key": KEY}
METADATA = {"x-api-key": KEY}  # gRPC metadata keys are lower case


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    tmp = tmp_path_factory.mktemp("onnx-v1")
    models = tmp / "models"
    models.mkdir()
    shutil.copyfile(DEFAULT_MODELS_DIR / "digits.safetensors", models / "digits.safetensors")
    (models / "emb.onnx").write_bytes(embedding_model())
    grpc_port = free_port()
    env = {
        "NEXPO_API_KEYS": KEY,
        "NEXPO_STATE_DIR": str(tmp / "state"),
        "NEXPO_MODELS_DIR": str(models),
        "NEXPO_MAX_BATCH_WAIT_MS": "50",
        "NEXPO_RATE_LIMIT_RPS": "0",
        "NEXPO_GRPC_PORT": str(grpc_port),
    }
    with GatewayProcess(env, log_path=tmp / "server.log") as process:
        process.grpc_address = f"127.0.0.1:{grpc_port}"  # type: ignore[attr-defined]
        yield process


def test_concurrent_named_requests_are_answered_and_merged(server: GatewayProcess) -> None:
    requests = [np.array([[i % 10, 1, 2, 3]] * (1 + i % 3)) for i in range(32)]

    def call(ids: np.ndarray) -> list[list[float]]:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            response = client.post(
                "/v1/models/emb/infer", json={"inputs": {"ids": ids.tolist()}}, headers=HEADERS
            )
        assert response.status_code == 200, response.text
        outputs: list[list[float]] = response.json()["outputs"]["pooled"]
        return outputs

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(call, requests))
    for ids, answer in zip(requests, answers, strict=True):
        np.testing.assert_allclose(answer, pooled(ids), rtol=1e-6)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        bad = client.post("/v1/models/emb/infer", json={"inputs": {"ids": [[0.5, 1, 2, 3]]}}, headers=HEADERS)
    assert bad.status_code == 422 and "'ids'" in bad.json()["detail"]

    stats = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        (entry,) = stats.get_inference_statistics("emb", headers=HEADERS)["model_stats"]
    finally:
        stats.close()
    assert entry["name"] == "emb" and entry["version"] == "1"
    inference = entry["inference_stats"]
    assert inference["success"]["count"] == len(requests)
    assert inference["fail"]["count"] == 1
    assert entry["inference_count"] == sum(len(r) for r in requests)
    assert 1 <= entry["execution_count"] < len(requests)  # 16 clients, 50 ms to fill: some merged
    assert sum(b["compute_infer"]["count"] for b in entry["batch_stats"]) == entry["execution_count"]
    assert entry["last_inference"] > 0 and inference["compute_infer"]["ns"] > 0


def test_statistics_over_grpc_match_http(server: GatewayProcess) -> None:
    grpc_client = grpcclient.InferenceServerClient(server.grpc_address)  # type: ignore[attr-defined]
    http_client = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        every = grpc_client.get_inference_statistics(headers=METADATA, as_json=True)["model_stats"]
        assert {s["name"] for s in every} == {"digits", "emb"}
        over_grpc = grpc_client.get_inference_statistics("emb", "1", headers=METADATA, as_json=True)
        over_http = http_client.get_inference_statistics("emb", "1", headers=HEADERS)
        (g,), (h,) = over_grpc["model_stats"], over_http["model_stats"]
        assert int(g["inference_count"]) == h["inference_count"]
        assert int(g["inference_stats"]["success"]["count"]) == h["inference_stats"]["success"]["count"]
        with pytest.raises(InferenceServerException, match="no loaded model"):
            grpc_client.get_inference_statistics("nope", headers=METADATA)
        with pytest.raises(InferenceServerException, match="no loaded version"):
            http_client.get_inference_statistics("emb", "7", headers=HEADERS)
        with pytest.raises(InferenceServerException, match="API key"):
            http_client.get_inference_statistics("emb")
    finally:
        grpc_client.close()
        http_client.close()

"""ONNX models in NEXPO_MODELS_DIR served by ``/v1/models/{name}/infer`` with named, typed tensors
(nexpo's own engine), next to the safetensors MLPs; errors name the input; requests are merged."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, is_problem, make_settings
from nexpo.api.main import create_app
from nexpo.api.repository.layout import scan
from nexpo.api.repository.store import BatchingDefaults, ModelRepository
from nexpo.api.settings import DEFAULT_MODELS_DIR

pytest.importorskip("onnx")
pytest.importorskip("nexpo.inference")
from onnx_models import embedding_model, pooled, two_way_model


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "models"
    directory.mkdir()
    shutil.copyfile(DEFAULT_MODELS_DIR / "digits.safetensors", directory / "digits.safetensors")
    (directory / "emb.onnx").write_bytes(embedding_model())
    (directory / "two.onnx").write_bytes(two_way_model())
    return directory


@pytest.fixture
def client(tmp_path: Path, models_dir: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, models_dir=models_dir, max_infer_rows=8)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _infer(client: TestClient, name: str, body: Any) -> Any:
    return client.post(f"/v1/models/{name}/infer", json=body, headers=AUTH)


def test_the_flat_directory_lists_onnx_next_to_safetensors(models_dir: Path) -> None:
    models, error = scan(None, models_dir)
    assert error is None
    assert {n: s.versions[1].kind for n, s in models.items()} == {
        "digits": "safetensors",
        "emb": "onnx",
        "two": "onnx",
    }


def test_a_name_with_both_files_is_an_error_not_a_guess(models_dir: Path) -> None:
    shutil.copyfile(models_dir / "digits.safetensors", models_dir / "emb.safetensors")
    models, _ = scan(None, models_dir)
    assert models["emb"].error is not None and "keep one" in models["emb"].error
    assert not models["emb"].versions


def test_infer_takes_named_typed_inputs_and_returns_named_outputs(client: TestClient) -> None:
    ids = [[1, 2, 3, 4], [0, 0, 9, 9]]
    response = _infer(client, "emb", {"inputs": {"ids": ids}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "emb" and body["model_version"] == "1"
    assert list(body["outputs"]) == ["pooled"]
    np.testing.assert_allclose(body["outputs"]["pooled"], pooled(np.array(ids)), rtol=1e-6)


def test_several_inputs_and_a_chosen_output(client: TestClient) -> None:
    x, y = [[1.0, 2.0]], [[3.0, 4.0]]
    body = _infer(client, "two", {"inputs": {"x": x, "y": y}, "outputs": ["product"]}).json()
    assert body["outputs"] == {"product": [[3.0, 8.0]]}
    both = _infer(client, "two", {"inputs": {"x": x, "y": y}}).json()["outputs"]
    assert both == {"total": [[4.0, 6.0]], "product": [[3.0, 8.0]]}


def test_mlps_still_answer_as_before(client: TestClient) -> None:
    response = _infer(client, "digits", {"inputs": [[0.0] * 64]})
    assert response.status_code == 200
    assert len(response.json()["probabilities"][0]) == 10


def test_models_are_described(client: TestClient) -> None:
    listed = client.get("/v1/models", headers=AUTH).json()
    assert [m["name"] for m in listed["models"]] == ["digits"]
    tensor_models = {m["name"]: m for m in listed["tensor_models"]}
    assert set(tensor_models) == {"emb", "two"}
    emb = client.get("/v1/models/emb", headers=AUTH).json()
    assert emb["platform"] == "onnxruntime_onnx"
    assert emb["inputs"] == [{"name": "ids", "datatype": "INT64", "shape": [-1, 4]}]
    assert emb["outputs"] == [{"name": "pooled", "datatype": "FP32", "shape": [-1, 3]}]


@pytest.mark.parametrize(
    ("name", "body", "words"),
    [
        ("emb", {"inputs": {"idz": [[1, 2, 3, 4]]}}, ["'idz'", "ids"]),
        ("two", {"inputs": {"x": [[1.0, 2.0]]}}, ["'y'", "missing"]),
        ("emb", {"inputs": {"ids": [[1.5, 2, 3, 4]]}}, ["'ids'", "integers"]),
        ("emb", {"inputs": {"ids": [[1, 2, 3]]}}, ["'ids'", "shape [1, 3]", "INT64 [?, 4]"]),
        ("emb", {"inputs": {"ids": [[1, 2, 3, 4], [1, 2]]}}, ["'ids'", "rectangular"]),
        ("emb", {"inputs": {"ids": [1, 2, 3, 4]}}, ["'ids'", "nested 2 deep"]),
        ("emb", {"inputs": {"ids": [[[1], [2], [3], [4]]]}}, ["'ids'", "deeper"]),
        ("emb", {"inputs": {"ids": []}}, ["'ids'", "non-empty"]),
        ("emb", {"inputs": {"ids": [[1, 2, 3, 4]] * 9}}, ["'ids'", "limit of 8"]),
        ("emb", {"inputs": {"ids": [[1, 2, 3, 2**63]]}}, ["'ids'", "range of INT64"]),
        ("two", {"inputs": {"x": [[1.0, 2.0]], "y": [[1.0, 2.0]]}, "outputs": ["nope"]}, ["'nope'", "total"]),
        ("two", {"inputs": {"x": [[1.0, 2.0]], "y": [[1.0, 2.0]]}, "extra": 1}, ["'extra'"]),
        ("emb", {"inputs": [[1, 2, 3, 4]]}, ["inputs"]),
        ("two", {"inputs": {"x": [[1.0, 2.0]], "y": [[1.0, 2.0], [3.0, 4.0]]}}, ["rejected"]),
    ],
)
def test_bad_inputs_are_422_naming_the_input(
    client: TestClient, name: str, body: Any, words: list[str]
) -> None:
    detail = is_problem(_infer(client, name, body), 422)["detail"]
    for word in words:
        assert word in detail


def test_bad_json_and_unknown_models(client: TestClient) -> None:
    response = client.post(
        "/v1/models/emb/infer", content=b"{", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert "not valid JSON" in is_problem(response, 422)["detail"]
    assert "emb" in is_problem(_infer(client, "nope", {"inputs": {}}), 404)["detail"]
    assert is_problem(client.get("/v1/models/nope", headers=AUTH), 404)
    assert client.post("/v1/models/emb/infer", json={"inputs": {"ids": [[1, 2, 3, 4]]}}).status_code == 401


def test_a_huge_body_is_refused_while_it_is_counted(client: TestClient) -> None:
    body = b'{"inputs": {"ids": [' + b",".join([b"[1,2,3,4]"] * 5000) + b"]}}"
    response = client.post(
        "/v1/models/emb/infer", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert "JSON values" in is_problem(response, 422)["detail"]


def test_v1_and_v2_share_the_loaded_model_and_its_metrics(client: TestClient) -> None:
    def stats() -> Any:  # the counters are the process's (Prometheus): compare before and after
        return client.get("/v2/models/emb/stats", headers=AUTH).json()["model_stats"][0]

    before = stats()
    assert _infer(client, "emb", {"inputs": {"ids": [[1, 2, 3, 4]]}}).status_code == 200
    assert _infer(client, "emb", {"inputs": {"ids": [[1, 2, 3]]}}).status_code == 422
    after = stats()
    for kind in ("success", "fail"):
        assert after["inference_stats"][kind]["count"] == before["inference_stats"][kind]["count"] + 1
    assert after["inference_count"] == before["inference_count"] + 1
    assert after["last_inference"] > 0


async def test_concurrent_requests_merge_into_one_batch(models_dir: Path) -> None:
    async def run(fn: Any, *args: Any, cost: int) -> Any:
        return fn(*args)

    defaults = BatchingDefaults(enabled=True, max_batch_size=64, max_wait_s=0.05, max_concurrent=1)
    repository = ModelRepository(None, models_dir, run, defaults)
    await repository.sync()
    try:
        model = repository.get("emb")
        assert model is not None and model.batcher is not None
        requests = [np.array([[i % 10, 1, 2, 3]] * (1 + i % 3), np.int64) for i in range(8)]
        answers = await asyncio.gather(*(repository.infer(model, {"ids": ids}) for ids in requests))
        for ids, answer in zip(requests, answers, strict=True):
            np.testing.assert_allclose(answer["pooled"], pooled(ids), rtol=1e-6)
        # one merged batch of the 8 requests (``batches`` is this version's own, unlike the counters)
        assert model.metrics.batches.keys() == {sum(len(r) for r in requests)}
        assert model.metrics.batches[sum(len(r) for r in requests)][0] == 1
    finally:
        await repository.close()

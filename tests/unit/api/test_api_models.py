"""api/routers/models.py: list, describe, infer (batched and not) and every input error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, is_problem, make_settings
from nexpo.api.inference.registry import load_model
from nexpo.api.main import create_app
from nexpo.api.models.train_digits import OUT as DIGITS
from nexpo.api.models.train_digits import held_out_split


def _reference(x: np.ndarray) -> np.ndarray:
    """The same MLP in float64 numpy."""
    out = x.astype(np.float64)
    for layer in load_model(DIGITS).layers:
        out = out @ layer.weight + layer.bias
        if layer.activation == "relu":
            out = np.maximum(out, 0)
    out = np.exp(out - out.max(axis=1, keepdims=True))
    return out / out.sum(axis=1, keepdims=True)


def test_list_and_describe(client: TestClient) -> None:
    models = client.get("/v1/models", headers=AUTH).json()["models"]
    assert [m["name"] for m in models] == ["digits"]
    one = client.get("/v1/models/digits", headers=AUTH).json()
    assert one["input_width"] == 64
    assert one["layers"][-1]["activation"] == "softmax"
    body = is_problem(client.get("/v1/models/nope", headers=AUTH), 404)
    assert "digits" in body["detail"]


@pytest.mark.parametrize("batching", [True, False])
def test_infer_matches_a_float64_reference(tmp_path: Path, batching: bool) -> None:
    images, labels = held_out_split()
    x = images[:50]
    with TestClient(create_app(make_settings(tmp_path, batching=batching))) as c:
        response = c.post("/v1/models/digits/infer", headers=AUTH, json={"inputs": x.tolist()})
    assert response.status_code == 200
    body = response.json()
    probabilities = np.array(body["probabilities"])
    assert probabilities.shape == (50, 10)
    np.testing.assert_allclose(probabilities, _reference(x), atol=1e-4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert body["labels"] == [str(i) for i in probabilities.argmax(axis=1)]
    assert np.mean(np.array(body["labels"], dtype=int) == labels[:50]) > 0.9


def test_bad_inputs_are_422_with_a_reason(tmp_path: Path) -> None:
    row = [0.0] * 64
    with TestClient(create_app(make_settings(tmp_path, max_infer_rows=8))) as c:

        def infer(payload: object) -> dict[str, object]:
            return is_problem(c.post("/v1/models/digits/infer", headers=AUTH, json=payload), 422)

        assert "expects 64" in str(infer({"inputs": [row, [1.0, 2.0]]})["detail"])
        assert "inputs[1]" in str(infer({"inputs": [row, [1.0, 2.0]]})["detail"])
        assert "inputs" in str(infer({"inputs": []})["detail"])
        assert "limit of 8" in str(infer({"inputs": [row] * 9})["detail"])
        assert "overflow" in str(infer({"inputs": [[1e300] * 64]})["detail"])
        infer({"inputs": [["a"] * 64]})
        infer({"rows": [row]})
        infer({"inputs": row})
        nan = b'{"inputs": [[NaN' + b", 0.0" * 63 + b"]]}"
        response = c.post(
            "/v1/models/digits/infer", headers={**AUTH, "content-type": "application/json"}, content=nan
        )
        assert "finite" in is_problem(response, 422)["detail"]

"""The ONNX backend's adapter, with onnxruntime standing in for nexpo's engine (same API shape),
and an ONNX model served over /v2 end to end."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, make_settings
from nexpo.api.main import create_app
from nexpo.api.repository import onnx_backend
from nexpo.api.repository.backends import BackendError
from nexpo.api.repository.onnx_backend import OnnxBackend

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402


def _model_bytes() -> bytes:
    """Y = X @ W + 1 (FP32 [-1, 3] -> [-1, 2]), C = identity on INT64, S = identity on strings."""
    w = helper.make_tensor("W", TensorProto.FLOAT, [3, 2], [1, 0, 0, 1, 1, 1])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W"], ["XW"]),
            helper.make_node("Add", ["XW", "one"], ["Y"]),
            helper.make_node("Identity", ["I"], ["C"]),
            helper.make_node("Identity", ["S_IN"], ["S"]),
        ],
        "g",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("I", TensorProto.INT64, [2]),
            helper.make_tensor_value_info("S_IN", TensorProto.STRING, [None]),
        ],
        [
            helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("C", TensorProto.INT64, [2]),
            helper.make_tensor_value_info("S", TensorProto.STRING, [None]),
        ],
        initializer=[w, one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _session(raw: bytes) -> object:
    return ort.InferenceSession(raw, providers=["CPUExecutionProvider"])


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in ``nexpo.inference``-like module whose InferenceSession is onnxruntime's."""
    module = types.ModuleType("stand_in_engine")
    module.InferenceSession = _session  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "stand_in_engine", module)
    monkeypatch.setattr(onnx_backend, "ENGINE_MODULE", "stand_in_engine")


def test_adapter_describes_and_runs(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(_model_bytes())
    backend = OnnxBackend.load(path, _session)
    assert backend.platform == "onnxruntime_onnx"
    assert [(s.name, s.datatype, s.shape) for s in backend.inputs] == [
        ("X", "FP32", (-1, 3)),
        ("I", "INT64", (2,)),
        ("S_IN", "BYTES", (-1,)),
    ]
    out = backend.infer(
        {
            "X": np.array([[1, 2, 3]], np.float32),
            "I": np.array([4, 5], np.int64),
            "S_IN": np.array([b"hi", "h\u00e9".encode()], object),
        }
    )
    np.testing.assert_allclose(out["Y"], [[5.0, 6.0]])
    assert out["C"].tolist() == [4, 5]
    assert [str(v) for v in out["S"]] == ["hi", "h\u00e9"]


def test_a_model_the_engine_rejects_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not an onnx model")
    with pytest.raises(BackendError, match="rejected the model"):
        OnnxBackend.load(path, _session)


def test_onnx_over_v2(tmp_path: Path, engine: None) -> None:
    (tmp_path / "repo" / "lin" / "1").mkdir(parents=True)
    (tmp_path / "repo" / "lin" / "1" / "model.onnx").write_bytes(_model_bytes())
    settings = make_settings(tmp_path, model_repository=tmp_path / "repo", repository_poll_s=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        meta = client.get("/v2/models/lin", headers=AUTH).json()
        assert meta["platform"] == "onnxruntime_onnx"
        body = {
            "inputs": [
                {"name": "X", "datatype": "FP32", "shape": [2, 3], "data": [[1, 0, 0], [0, 0, 1]]},
                {"name": "I", "datatype": "INT64", "shape": [2], "data": [7, -7]},
                {"name": "S_IN", "datatype": "BYTES", "shape": [1], "data": ["abc"]},
            ]
        }
        response = client.post("/v2/models/lin/infer", headers=AUTH, json=body)
        assert response.status_code == 200, response.text
        outputs = {o["name"]: o for o in response.json()["outputs"]}
        assert outputs["Y"]["data"] == [2.0, 1.0, 2.0, 2.0]
        assert outputs["C"] == {"name": "C", "datatype": "INT64", "shape": [2], "data": [7, -7]}
        assert outputs["S"]["datatype"] == "BYTES" and outputs["S"]["data"] == ["abc"]
        body["inputs"][1]["shape"] = [3]
        body["inputs"][1]["data"] = [1, 2, 3]
        bad = client.post("/v2/models/lin/infer", headers=AUTH, json=body)
        assert bad.status_code == 400
        assert "the model takes [2]" in bad.json()["error"]


def _mlp_bytes() -> bytes:
    """softmax(relu(X @ W1 + B1) @ W2 + B2): FP32 [-1, 4] -> [-1, 3]."""
    rng = np.random.default_rng(7)
    tensors = {
        "W1": rng.standard_normal((4, 8)),
        "B1": rng.standard_normal(8),
        "W2": rng.standard_normal((8, 3)),
        "B2": rng.standard_normal(3),
    }
    initializers = [
        helper.make_tensor(name, TensorProto.FLOAT, value.shape, value.astype(np.float32).ravel())
        for name, value in tensors.items()
    ]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["X", "W1"], ["H0"]),
            helper.make_node("Add", ["H0", "B1"], ["H1"]),
            helper.make_node("Relu", ["H1"], ["H"]),
            helper.make_node("Gemm", ["H", "W2", "B2"], ["L"]),
            helper.make_node("Softmax", ["L"], ["P"], axis=-1),
        ],
        "mlp",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("P", TensorProto.FLOAT, ["batch", 3])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_onnx_over_v2_on_nexpos_own_engine(tmp_path: Path) -> None:
    # no stand-in: the repository loads the model with nexpo.inference.InferenceSession
    pytest.importorskip("nexpo.inference")
    raw = _mlp_bytes()
    (tmp_path / "repo" / "mlp" / "1").mkdir(parents=True)
    (tmp_path / "repo" / "mlp" / "1" / "model.onnx").write_bytes(raw)
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    (expected,) = _session(raw).run(["P"], {"X": x})  # type: ignore[attr-defined]
    settings = make_settings(tmp_path, model_repository=tmp_path / "repo", repository_poll_s=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.get("/v2/models/mlp/ready", headers=AUTH).status_code == 200
        body = {"inputs": [{"name": "X", "datatype": "FP32", "shape": [5, 4], "data": x.ravel().tolist()}]}
        response = client.post("/v2/models/mlp/infer", headers=AUTH, json=body)
        assert response.status_code == 200, response.text
        (output,) = response.json()["outputs"]
        assert output["shape"] == [5, 3]
        got = np.array(output["data"], np.float32).reshape(5, 3)
        np.testing.assert_allclose(got, expected, atol=1e-4 * (1 + np.abs(expected).max()))

"""api/inference/registry.py: the nexpo-mlp/1 format, and malformed files skipped by name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, is_problem, make_settings
from nexpo.api.inference.registry import ModelError, ModelRegistry, load_model, save_model
from nexpo.api.main import create_app
from nexpo.api.models.train_digits import OUT as DIGITS
from safetensors.numpy import save_file


def _write_tiny(path: Path, **meta_overrides: str) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        "layers.0.weight": rng.standard_normal((4, 3)).astype(np.float32),
        "layers.0.bias": np.zeros(3, np.float32),
    }
    meta = {"format": "nexpo-mlp/1", "activations": '["softmax"]', "labels": '["a","b","c"]'}
    meta.update(meta_overrides)
    save_file(tensors, str(path), metadata=meta)


def test_bundled_digits_model_loads() -> None:
    model = load_model(DIGITS)
    assert model.name == "digits"
    assert model.input_width == 64
    assert model.labels == tuple(str(d) for d in range(10))
    assert [layer.activation for layer in model.layers] == ["relu", "relu", "softmax"]
    assert DIGITS.stat().st_size < 200_000
    described = model.describe()
    assert described["parameters"] == model.parameters
    assert len(described["sha256"]) == 64


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    w = [np.ones((2, 3), np.float32), np.ones((3, 2), np.float32)]
    b = [np.zeros(3, np.float32), np.zeros(2, np.float32)]
    path = tmp_path / "tiny.safetensors"
    save_model(
        path, weights=w, biases=b, activations=["tanh", "softmax"], labels=["no", "yes"], description="d"
    )
    model = load_model(path)
    assert model.input_width == 2
    assert model.labels == ("no", "yes")
    assert model.description == "d"
    with pytest.raises(ModelError, match="last layer"):
        save_model(path, weights=w, biases=b, activations=["tanh", "relu"], labels=["no", "yes"])


@pytest.mark.parametrize(
    ("meta", "message"),
    [
        ({"format": "other/1"}, "format"),
        ({"activations": '["swish"]'}, "unknown activation"),
        ({"activations": "not json"}, "not JSON"),
        ({"labels": '["a","b"]'}, "labels"),
        ({"activations": '["relu"]'}, "last layer"),
        ({"activations": '["relu", "softmax"]'}, "tensors do not match"),
    ],
)
def test_format_violations_name_the_rule(tmp_path: Path, meta: dict[str, str], message: str) -> None:
    path = tmp_path / "bad.safetensors"
    _write_tiny(path, **meta)
    with pytest.raises(ModelError, match=message):
        load_model(path)


def test_malformed_files_are_reported_by_name_and_skipped(tmp_path: Path) -> None:
    (tmp_path / "good.safetensors").write_bytes(DIGITS.read_bytes())
    (tmp_path / "garbage.safetensors").write_bytes(b"\xff" * 100)
    (tmp_path / "empty.safetensors").write_bytes(b"")
    _write_tiny(tmp_path / "Bad Name.safetensors")
    nan = tmp_path / "nan.safetensors"
    save_file(
        {"layers.0.weight": np.full((2, 2), np.nan, np.float32), "layers.0.bias": np.zeros(2, np.float32)},
        str(nan),
        metadata={"format": "nexpo-mlp/1", "activations": '["softmax"]', "labels": '["a","b"]'},
    )
    f64 = tmp_path / "f64.safetensors"
    save_file(
        {"layers.0.weight": np.ones((2, 2)), "layers.0.bias": np.zeros(2)},
        str(f64),
        metadata={"format": "nexpo-mlp/1", "activations": '["softmax"]', "labels": '["a","b"]'},
    )
    registry = ModelRegistry.scan(tmp_path)
    assert list(registry.models) == ["good"]
    assert set(registry.errors) == {
        "garbage.safetensors",
        "empty.safetensors",
        "Bad Name.safetensors",
        "nan.safetensors",
        "f64.safetensors",
    }
    assert "NaN" in registry.errors["nan.safetensors"]
    assert "float32" in registry.errors["f64.safetensors"]

    with TestClient(create_app(make_settings(tmp_path, models_dir=tmp_path))) as c:
        body = is_problem(c.get("/readyz"), 503)  # a model the operator shipped is missing
        assert "5 model file(s) failed to load" in body["detail"]
        assert "garbage" not in body["detail"] and str(tmp_path) not in body["detail"]
        info = c.get("/v1/info", headers=AUTH).json()
        assert [m["name"] for m in info["models"]] == ["good"]
        assert "garbage.safetensors" in info["skipped_model_files"]


def test_missing_models_dir_serves_no_models(tmp_path: Path) -> None:
    registry = ModelRegistry.scan(tmp_path / "absent")
    assert registry.models == {}
    assert "does not exist" in json.dumps(registry.errors)


@pytest.mark.timeout(60)  # a FIFO hung the scan (and the startup); /dev/zero grew memory without bound
def test_fifos_devices_directories_and_deep_headers_are_skipped_without_paths(tmp_path: Path) -> None:
    (tmp_path / "good.safetensors").write_bytes(DIGITS.read_bytes())
    os.mkfifo(tmp_path / "fifo.safetensors")
    (tmp_path / "zero.safetensors").symlink_to("/dev/zero")
    (tmp_path / "dir.safetensors").mkdir()
    header = b"[" * 100_000 + b"]" * 100_000
    (tmp_path / "deep.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    registry = ModelRegistry.scan(tmp_path)
    assert list(registry.models) == ["good"]
    assert "a FIFO" in registry.errors["fifo.safetensors"]
    assert "character device" in registry.errors["zero.safetensors"]
    assert "a directory" in registry.errors["dir.safetensors"]
    assert "deep.safetensors" in registry.errors
    with pytest.raises(ModelError, match="must match"):  # ``$`` accepted a trailing newline
        load_model(tmp_path / "digits\n.safetensors")
    with TestClient(create_app(make_settings(tmp_path, models_dir=tmp_path))) as c:
        info = c.get("/v1/info", headers=AUTH)
        assert set(info.json()["skipped_model_files"]) == {
            "fifo.safetensors",
            "zero.safetensors",
            "dir.safetensors",
            "deep.safetensors",
        }
        assert str(tmp_path) not in info.text


def test_a_missing_models_dir_is_reported_without_its_path(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, models_dir=tmp_path / "absent"))) as c:
        info = c.get("/v1/info", headers=AUTH)
        assert info.json()["skipped_model_files"] == {"<models directory>": "models directory does not exist"}
        assert str(tmp_path) not in info.text
        not_found = c.post("/v1/models/digits/infer", headers=AUTH, json={"inputs": [[0.0]]})
        assert not_found.status_code == 404 and str(tmp_path) not in not_found.text

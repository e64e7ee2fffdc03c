"""The pure-ASGI /v2 infer path (api/v2/hot_infer.py) answers exactly as the FastAPI routes do
(``create_app(fast_paths=False)``): status, content type, binary header and body, errors too."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, make_settings
from nexpo.api.main import create_app
from nexpo.api.settings import DEFAULT_MODELS_DIR


@pytest.fixture
def both(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    repo = tmp_path / "repo"
    (repo / "digits" / "1").mkdir(parents=True)
    shutil.copyfile(DEFAULT_MODELS_DIR / "digits.safetensors", repo / "digits" / "1" / "model.safetensors")
    settings = make_settings(tmp_path, model_repository=repo, repository_poll_s=0, max_body_bytes=4096)
    with TestClient(create_app(settings)) as hot, TestClient(create_app(settings, fast_paths=False)) as plain:
        yield hot, plain


def _binary(rows: int) -> tuple[bytes, dict[str, str]]:
    raw = np.full((rows, 64), 0.25, dtype="<f4").tobytes()
    header = orjson.dumps(
        {
            "id": "b",
            "inputs": [
                {
                    "name": "INPUT",
                    "datatype": "FP32",
                    "shape": [rows, 64],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    )
    return header + raw, {**AUTH, "Inference-Header-Content-Length": str(len(header))}


JSON_ROW = {"inputs": [{"name": "INPUT", "datatype": "FP32", "shape": [1, 64], "data": [0.5] * 64}]}
CASES = [
    ("/v2/models/digits/infer", orjson.dumps(JSON_ROW), AUTH),
    ("/v2/models/digits/versions/1/infer", orjson.dumps(JSON_ROW), AUTH),
    ("/v2/models/digits/infer", *_binary(2)),
    ("/v2/models/digits/infer", *_binary(20)),  # over the 4 KiB body limit: 413
    ("/v2/models/nope/infer", orjson.dumps(JSON_ROW), AUTH),
    ("/v2/models/digits/versions/x/infer", orjson.dumps(JSON_ROW), AUTH),
    ("/v2/models/digits/infer", b"{not json", AUTH),
    ("/v2/models/digits/infer", b"{}", {**AUTH, "Inference-Header-Content-Length": "99"}),
    ("/v2/models/digits/infer", b"{}", {**AUTH, "Content-Encoding": "gzip"}),
]


@pytest.mark.parametrize(("path", "body", "headers"), CASES)
def test_hot_and_routed_answers_are_identical(
    both: tuple[TestClient, TestClient], path: str, body: bytes, headers: dict[str, str]
) -> None:
    hot, plain = (client.post(path, content=body, headers=headers) for client in both)
    assert hot.status_code == plain.status_code
    assert hot.content == plain.content
    for name in ("content-type", "inference-header-content-length"):
        assert hot.headers.get(name) == plain.headers.get(name)

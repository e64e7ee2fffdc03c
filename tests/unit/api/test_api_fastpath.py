"""api/fastpath.py: the pure-ASGI hot path answers exactly as the FastAPI routes do."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, make_settings
from nexpo.api.main import create_app

ROW = [float(i % 17) for i in range(64)]
CASES: list[tuple[str, str, bytes | None]] = [
    ("GET", "/v1/ping", None),
    ("POST", "/v1/models/digits/infer", json.dumps({"inputs": [ROW, ROW[::-1]]}).encode()),
    ("POST", "/v1/models/digits/infer", json.dumps({"inputs": [ROW[:3]]}).encode()),
    ("POST", "/v1/models/digits/infer", json.dumps({"inputs": []}).encode()),
    ("POST", "/v1/models/digits/infer", json.dumps({"inputs": [ROW] * 9}).encode()),
    ("POST", "/v1/models/digits/infer", b'{"inputs": [[NaN]]}'),
    ("POST", "/v1/models/digits/infer", b"{not json"),
    ("POST", "/v1/models/nope/infer", json.dumps({"inputs": [ROW]}).encode()),
    ("POST", "/v1/hash", json.dumps({"data": base64.b64encode(b"abc").decode()}).encode()),
    ("POST", "/v1/hash", json.dumps({"items": ["", "YQ=="]}).encode()),
    ("POST", "/v1/hash", json.dumps({"data": "!!"}).encode()),
    ("POST", "/v1/hash", json.dumps({}).encode()),
    ("POST", "/v1/hash", b""),
]


@pytest.mark.parametrize(("method", "path", "body"), CASES)
def test_same_answers_with_and_without_the_fast_path(
    tmp_path: Path, method: str, path: str, body: bytes | None
) -> None:
    answers = []
    for fast in (True, False):
        app = create_app(make_settings(tmp_path, max_infer_rows=8), fast_paths=fast)
        with TestClient(app) as c:
            headers = {**AUTH, "content-type": "application/json"}
            response = c.request(method, path, headers=headers, content=body)
            metrics = c.get("/metrics").text
        answers.append((response.status_code, response.headers["content-type"], response.content))
        assert f'route="{path.replace("/digits/", "/{name}/").replace("/nope/", "/{name}/")}"' in metrics
    assert answers[0] == answers[1]

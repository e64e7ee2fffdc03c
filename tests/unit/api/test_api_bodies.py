"""api/bodies.py and the bodies of infer and matmul: JSON numbers only, sizes bounded before
parsing, malformed .npy headers answered 4xx (never 500)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, is_problem, make_settings
from nexpo.api import bodies
from nexpo.api.bodies import JsonLimits
from nexpo.api.fastpath import _read_body
from nexpo.api.main import create_app
from nexpo.api.problems import ProblemError

INFER = "/v1/models/digits/infer"
NPY = {**AUTH, "content-type": "application/x-npy"}
ROW = [0.0] * 64


@pytest.fixture(params=[True, False], ids=["fast-path", "fastapi"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path, max_infer_rows=8), fast_paths=request.param)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("body", [b"[]", b'{"a": [[1, 2], [3]], "b": "x,y"}', b"[[[[]]]]", b"1"])
def test_value_bound_is_at_least_what_a_parse_builds(body: bytes) -> None:
    import json

    def count(value: object) -> int:
        if isinstance(value, list):
            return 1 + sum(count(v) for v in value)
        if isinstance(value, dict):
            return 1 + sum(1 + count(v) for v in value.values())
        return 1

    whole, pieces = JsonLimits(10**9, "").budget(), JsonLimits(10**9, "").budget()
    whole.feed(body)
    for start in range(len(body)):
        pieces.feed(body[start : start + 1])
    assert whole.values == pieces.values >= count(json.loads(body))


async def test_a_body_over_budget_is_not_read_to_its_end() -> None:
    asked = 0

    async def receive() -> dict[str, object]:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": b"[[],[],[],", "more_body": True}

    budget = JsonLimits(10**6, "too many values", max_arrays=20, too_many_arrays="too many rows").budget()
    with pytest.raises(ProblemError, match="too many rows"):
        await _read_body(receive, budget)
    assert asked == 6  # four arrays a chunk: the 6th crosses the budget of 20


@pytest.mark.parametrize(
    ("value", "loc"),
    [('"1"', "inputs.0.1"), ("true", "inputs.0.1"), ("null", "inputs.0.1"), ("[1]", "inputs.0.1")],
)
def test_infer_takes_json_numbers_only(client: TestClient, value: str, loc: str) -> None:
    body = '{"inputs": [[0, ' + value + ", " + ", ".join(["0"] * 62) + "]]}"
    problem = is_problem(client.post(INFER, headers=AUTH, content=body), 422)
    assert problem["errors"][0]["loc"] == loc.split(".")
    assert problem["errors"][0]["type"] == "float_type"


def test_infer_rejects_unknown_fields(client: TestClient) -> None:
    problem = is_problem(client.post(INFER, headers=AUTH, json={"inputs": [ROW], "input": [ROW]}), 422)
    assert problem["errors"][0]["type"] == "extra_forbidden"
    assert client.post(INFER, headers=AUTH, json={"inputs": [ROW]}).status_code == 200


def test_too_many_rows_are_rejected_before_parsing(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_parse(*_: object) -> None:
        raise AssertionError("parsed a body over its budget")

    monkeypatch.setattr(bodies, "parse_json", no_parse)
    hostile = b'{"inputs":[' + b"[]," * 200_000 + b"[]]}"  # over INLINE_BYTES: counted in a thread
    problem = is_problem(client.post(INFER, headers=AUTH, content=hostile), 422)
    assert "more than 8 rows" in problem["detail"]
    wide = b'{"inputs":[[' + b"0," * 5000 + b"0]]}"  # one row, far too many values
    assert "8 rows of 64 numbers" in is_problem(client.post(INFER, headers=AUTH, content=wide), 422)["detail"]


def test_json_matmul_takes_numbers_only_and_is_bounded(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path, max_json_matmul_elements=100))
    with TestClient(app, raise_server_exceptions=False) as client:
        for bad in ('"1"', "true", "null"):
            body = '{"a": [[1, ' + bad + "]], " + '"b": [[1], [2]]}'
            problem = is_problem(client.post("/v1/matmul", headers=AUTH, content=body), 422)
            assert problem["errors"][0]["loc"] == ["a", "0", "1"]
        extra = {"a": [[1.0]], "b": [[1.0]], "c": 1}
        is_problem(client.post("/v1/matmul", headers=AUTH, json=extra), 422)
        big = {"a": [[1.0] * 101], "b": [[1.0]] * 101}
        problem = is_problem(client.post("/v1/matmul", headers=AUTH, json=big), 422)
        assert "JSON limit of 100" in problem["detail"]
        huge = b'{"a":[' + b"[1]," * 30_000 + b'[1]],"b":[[1]]}'
        problem = is_problem(client.post("/v1/matmul", headers=AUTH, content=huge), 422)
        assert "JSON values" in problem["detail"]
        ok = client.post("/v1/matmul", headers=AUTH, json={"a": [[1, 2]], "b": [[3], [4]]})
        assert ok.status_code == 200 and ok.json()["result"] == [[11.0]]


def _npy_with_header(header: str, data: bytes = b"") -> bytes:
    """A version 1.0 .npy whose header dict is ``header`` verbatim (numpy's writer refuses lies)."""
    text = header + " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode() + data


GOOD = io.BytesIO()
np.save(GOOD, np.ones((2, 2)))


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-1, -1), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (0, -3), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2**63, 0), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775808, 0), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (True, True), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2.0), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (4000001, 1), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2, 1), }",
        "{'descr': '|O', 'fortran_order': False, 'shape': (1, 1), }",
        "{'descr': [('x', '<f8')], 'fortran_order': False, 'shape': (1, 1), }",
        "{'descr': ('<f8', (2,)), 'fortran_order': False, 'shape': (1, 1), }",
        "{'descr': '<f2', 'fortran_order': False, 'shape': (1, 1), }",
        "{'descr': 5, 'fortran_order': False, 'shape': (1, 1), }",
        "{'descr': '<f8', 'fortran_order': 1, 'shape': (1, 1), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': [1, 1], }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), 'extra': 1}",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)",
        "__import__('os')",
    ],
)
def test_malformed_npy_headers_are_4xx(client: TestClient, header: str) -> None:
    body = _npy_with_header(header, b"\x00" * 32) + GOOD.getvalue()
    response = client.post("/v1/matmul", headers=NPY, content=body)
    assert response.status_code in (400, 422), response.text
    is_problem(response, response.status_code)


def test_truncated_and_fortran_npy(client: TestClient) -> None:
    is_problem(client.post("/v1/matmul", headers=NPY, content=GOOD.getvalue()[:-8] + GOOD.getvalue()), 400)
    is_problem(client.post("/v1/matmul", headers=NPY, content=GOOD.getvalue()[:7]), 400)
    a = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    out = io.BytesIO()
    np.save(out, a)
    np.save(out, np.eye(3))
    response = client.post("/v1/matmul", headers=NPY, content=out.getvalue())
    assert response.status_code == 200
    np.testing.assert_array_equal(np.load(io.BytesIO(response.content)), a)


# --- /v1/hash, /v1/hmac and /v1/merkle: one list of strings, counted like tensor bodies

ITEM_BODIES = {
    "/v1/hash": lambda n: b'{"items":[' + b'"",' * n + b'""]}',
    "/v1/hmac": lambda n: b'{"key":"","items":[' + b'"",' * n + b'""]}',
    "/v1/merkle": lambda n: b'{"leaves":[' + b'"",' * n + b'""]}',
}


@pytest.mark.parametrize("path", sorted(ITEM_BODIES))
def test_item_bodies_over_their_value_budget_are_rejected_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    def no_parse(*_: object) -> None:
        raise AssertionError("parsed a body over its budget")

    monkeypatch.setattr(bodies, "parse_json", no_parse)
    app = create_app(make_settings(tmp_path, max_hash_items=1000))
    with TestClient(app, raise_server_exceptions=False) as c:
        # ~2.7 million empty strings in 8 MiB: parsed, they cost 2-3x the body before their 422
        hostile = ITEM_BODIES[path](8 * 1024 * 1024 // 3 - 20)
        problem = is_problem(c.post(path, headers=AUTH, content=hostile), 422)
        assert problem["detail"] == "the body holds more than 1016 JSON values; the limit is 1000 " + (
            "leaves" if path == "/v1/merkle" else "items"
        )


@pytest.mark.parametrize("path", sorted(ITEM_BODIES))
def test_item_bodies_within_budget_but_over_the_limit_name_it(tmp_path: Path, path: str) -> None:
    with TestClient(create_app(make_settings(tmp_path, max_hash_items=10))) as c:
        assert c.post(path, headers=AUTH, content=ITEM_BODIES[path](9)).status_code == 200
        detail = is_problem(c.post(path, headers=AUTH, content=ITEM_BODIES[path](10)), 422)["detail"]
        assert "11 " in detail and "exceed the limit of 10" in detail


async def test_read_json_body_stops_at_the_budget() -> None:
    from nexpo.api.bodies import item_list_limits, read_json_body
    from starlette.requests import Request

    asked = 0

    async def receive() -> dict[str, object]:
        nonlocal asked
        asked += 1
        return {"type": "http.request", "body": b'"",' * 100, "more_body": True}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    with pytest.raises(ProblemError, match="the limit is 1000 items"):
        await read_json_body(request, item_list_limits("items", 1000))
    assert asked == 11  # 100 commas a chunk: the 11th crosses 1016 values, and no more is read

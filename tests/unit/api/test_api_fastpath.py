"""api/fastpath.py: the pure-ASGI hot path answers exactly as the FastAPI routes it shadows.

Every hot route of the gateway is driven twice with the same requests, error cases included: once
through the hot path, once through its FastAPI route (an app built with ``fast_paths=False``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, make_settings
from nexpo.api.fastpath import HotPathMiddleware, HotRoute
from nexpo.api.main import HOT_ROUTES, create_app
from starlette.routing import compile_path

ROW = [float(i % 17) for i in range(64)]
INFER = "/v1/models/digits/infer"
MAX_ROWS = 8
MAX_ITEMS = 4


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _json(value: object) -> bytes:
    return json.dumps(value).encode()


CASES: list[tuple[str, str, bytes | None]] = [
    ("GET", "/v1/ping", None),
    ("POST", INFER, _json({"inputs": [ROW, ROW[::-1]]})),
    ("POST", INFER, _json({"inputs": [ROW] * MAX_ROWS})),
    ("POST", INFER, _json({"inputs": [ROW[:3]]})),  # wrong width
    ("POST", INFER, _json({"inputs": []})),
    ("POST", INFER, _json({"inputs": [ROW] * (MAX_ROWS + 1)})),  # over the row budget
    ("POST", INFER, b'{"inputs":[' + b"[]," * 5000 + b"[]]}"),  # over budget, stopped while read
    ("POST", INFER, b'{"inputs": [[NaN]]}'),
    ("POST", INFER, b'{"inputs": [["1"]]}'),
    ("POST", INFER, _json({"inputs": [ROW], "extra": 1})),
    ("POST", INFER, b"{not json"),
    ("POST", INFER, b""),
    ("POST", "/v1/models/nope/infer", _json({"inputs": [ROW]})),
    ("POST", "/v1/hash", _json({"data": b64(b"abc")})),
    ("POST", "/v1/hash", _json({"data": b64(bytes(range(256)) * 400)})),  # hashed in a worker thread
    ("POST", "/v1/hash", _json({"items": ["", "YQ=="]})),
    ("POST", "/v1/hash", _json({"data": "!!"})),
    ("POST", "/v1/hash", _json({"items": ["YQ==", "!"]})),
    ("POST", "/v1/hash", _json({"items": [""] * (MAX_ITEMS + 1)})),  # within the budget, over the limit
    ("POST", "/v1/hash", _json({"items": [""] * 5000})),  # over the value budget
    ("POST", "/v1/hash", _json({"data": "", "items": []})),
    ("POST", "/v1/hash", _json({})),
    ("POST", "/v1/hash", b"[1, 2"),
    ("POST", "/v1/hash", b""),
]


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, TestClient]]:
    tmp_path = tmp_path_factory.mktemp("fastpath")
    settings = make_settings(tmp_path, max_infer_rows=MAX_ROWS, max_hash_items=MAX_ITEMS)
    fast_app, fastapi_app = create_app(settings), create_app(settings, fast_paths=False)
    with TestClient(fast_app) as fast, TestClient(fastapi_app) as slow:
        yield fast, slow


@pytest.mark.parametrize(("method", "path", "body"), CASES)
def test_same_answers_with_and_without_the_fast_path(
    clients: tuple[TestClient, TestClient], method: str, path: str, body: bytes | None
) -> None:
    answers = []
    for client in clients:
        headers = {**AUTH, "content-type": "application/json"}
        response = client.request(method, path, headers=headers, content=body)
        answers.append((response.status_code, response.headers["content-type"], response.content))
    assert answers[0] == answers[1]


def test_every_hot_route_is_compared_with_errors_included() -> None:
    for route in HOT_ROUTES:
        pattern = compile_path(route.template)[0]
        cases = [path for method, path, _ in CASES if method == route.method and pattern.match(path)]
        assert cases, f"no case drives {route.method} {route.template}"
        if route.reads_body:
            assert len(cases) >= 5, f"add error cases for {route.method} {route.template}"


def test_the_hot_path_is_what_the_gateway_serves(clients: tuple[TestClient, TestClient]) -> None:
    fast, slow = clients
    assert any(m.cls is HotPathMiddleware for m in fast.app.user_middleware)  # type: ignore[attr-defined]
    assert not any(m.cls is HotPathMiddleware for m in slow.app.user_middleware)  # type: ignore[attr-defined]
    for client in clients:  # either way the request is counted under its route's template
        client.post(INFER, headers=AUTH, json={"inputs": [ROW]})
        assert 'route="/v1/models/{name}/infer"' in client.get("/metrics").text


def test_a_hot_route_must_mark_the_route_it_shadows() -> None:
    app = FastAPI()

    @app.post("/v1/unmarked")
    async def unmarked() -> dict[str, str]:
        return {}

    async def operation(*_: object) -> bytes:
        return b"{}"

    with pytest.raises(ValueError, match="@served_by_hot_path"):
        HotPathMiddleware(app, None, [HotRoute("POST", "/v1/unmarked", operation)], app.router.routes)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no documented route"):
        HotPathMiddleware(app, None, [HotRoute("POST", "/v1/missing", operation)], app.router.routes)  # type: ignore[arg-type]


def test_the_shadowed_routes_say_so(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    shadowed = {
        (method, route.path)
        for route in app.routes
        if getattr(getattr(route, "endpoint", None), "__served_by_hot_path__", False)
        for method in getattr(route, "methods", ())
    }
    assert shadowed == {(route.method, route.template) for route in HOT_ROUTES}

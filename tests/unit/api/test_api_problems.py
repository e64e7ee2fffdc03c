"""api/problems.py: every error is application/problem+json without internals."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from gateway_helpers import AUTH, is_problem, make_settings
from nexpo.api.main import create_app
from nexpo.api.problems import ProblemError


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    is_problem(client.get("/nope"), 404)
    is_problem(client.get("/v1/nope", headers=AUTH), 404)


def test_wrong_method_is_a_405_problem(client: TestClient) -> None:
    is_problem(client.delete("/livez"), 405)


def test_validation_error_lists_fields_without_echoing_input(client: TestClient) -> None:
    body = is_problem(client.post("/v1/hash", headers=AUTH, json={"data": 5, "secret": "x" * 50}), 422)
    assert "data" in str(body["detail"])
    assert "x" * 50 not in str(body)
    assert isinstance(body["errors"], list)


def test_malformed_json_is_422(client: TestClient) -> None:
    response = client.post("/v1/hash", headers={**AUTH, "content-type": "application/json"}, content=b"{nope")
    is_problem(response, 422)


def test_unexpected_exception_is_a_500_problem_without_trace(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @app.get("/teapot")
    async def teapot() -> None:
        raise ProblemError(418, "short and stout")

    with TestClient(app, raise_server_exceptions=False) as c:
        body = is_problem(c.get("/boom"), 500)
        assert "secret" not in str(body)
        assert "Traceback" not in str(body)
        assert is_problem(c.get("/teapot"), 418)["detail"] == "short and stout"

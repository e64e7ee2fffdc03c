"""api/settings.py, api/routers/health.py, the OpenAPI document and `nexpo serve`'s arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, make_settings
from nexpo.api.main import create_app
from nexpo.api.settings import DEFAULT_MODELS_DIR, Settings
from pydantic import ValidationError

from nexpo import cli


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEXPO_PORT", "9123")
    monkeypatch.setenv("NEXPO_API_KEYS", " alpha-key-1 , b ,, ")
    monkeypatch.setenv("NEXPO_BATCHING", "false")
    settings = Settings()
    assert settings.port == 9123
    assert settings.configured_keys == ("alpha-key-1", "b")
    assert settings.batching is False
    assert settings.models_dir == DEFAULT_MODELS_DIR
    assert "alpha-key-1" not in repr(settings)  # keys are kept out of repr
    monkeypatch.setenv("NEXPO_WORKERS", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_readiness_follows_the_lifespan(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    with TestClient(app) as c:
        assert c.get("/readyz").json() == {"status": "ok"}
        assert c.get("/livez").json() == {"status": "ok"}
    gateway = app.state.gateway
    assert gateway.ready is False  # shut down
    with TestClient(app, raise_server_exceptions=False) as c:
        gateway.ready = False
        response = c.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"


def test_info(client: TestClient) -> None:
    info = client.get("/v1/info", headers=AUTH).json()
    assert info["isa_active"] in info["isa_available"]
    assert info["threads"] >= 1
    assert info["models"][0]["name"] == "digits"
    assert info["auth"] is True


def test_openapi_documents_every_endpoint_and_error(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "Problem" in schema["components"]["schemas"]
    assert "MatmulRequest" in schema["components"]["schemas"]
    expected = {
        "/livez", "/readyz", "/metrics", "/v1/info", "/v1/ping", "/v1/models", "/v1/models/{name}",
        "/v1/models/{name}/infer", "/v1/hash", "/v1/hash/stream", "/v1/hmac", "/v1/merkle", "/v1/matmul",
        "/v1/transit/{key}/encrypt", "/v1/transit/{key}/decrypt",
        "/v1/transit/encrypt/{name}", "/v1/transit/decrypt/{name}", "/v1/transit/rewrap/{name}",
        "/v1/transit/datakey/{kind}/{name}", "/v1/transit/hmac/{name}", "/v1/transit/hmac/{name}/{algorithm}",
        "/v1/transit/sign/{name}", "/v1/transit/verify/{name}", "/v1/transit/verify/{name}/{algorithm}",
        "/v1/transit/keys", "/v1/transit/keys/{name}", "/v1/transit/keys/{name}/rotate",
        "/v1/transit/keys/{name}/config",
    }  # fmt: skip
    assert expected <= set(schema["paths"])
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            if path.startswith("/v1/"):
                assert {"401", "413", "422", "429", "504"} <= set(operation["responses"]), path
                assert operation["security"]
                problem = operation["responses"]["401"]["content"]["application/problem+json"]["schema"]
                assert problem == {"$ref": "#/components/schemas/Problem"}
            assert operation["summary"]
    matmul = schema["paths"]["/v1/matmul"]["post"]
    assert {"application/json", "application/x-npy"} <= set(matmul["requestBody"]["content"])
    assert "application/x-npy" in matmul["responses"]["200"]["content"]


def test_serve_subcommand_is_registered(capsys: pytest.CaptureFixture[str]) -> None:
    # through the entry point (nexpo's core never imports its gateway)
    assert "serve" not in cli.COMMANDS
    assert "serve" in cli._entry_point_commands()
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--workers" in out
    assert "--port" in out


def test_no_filesystem_path_in_any_answer(tmp_path: Path) -> None:
    """A broken setup is explained in the log with paths, and over HTTP without them."""
    keys = tmp_path / "keys.json"
    keys.write_text("[" * 100_000)
    settings = make_settings(tmp_path, models_dir=tmp_path / "absent", transit_keys_file=keys)
    with TestClient(create_app(settings)) as c:
        for method, url, body in (
            ("GET", "/v1/info", None),
            ("GET", "/readyz", None),
            ("GET", "/metrics", None),
            ("GET", "/openapi.json", None),
            ("GET", "/v1/models", None),
            ("GET", "/v1/models/digits", None),
            ("POST", "/v1/models/digits/infer", {"inputs": [[0.0]]}),
            ("POST", "/v1/transit/orders/encrypt", {"plaintext": ""}),
            ("POST", "/v1/transit/orders/decrypt", {"ciphertext": "nexpo:v1:AAAA"}),
            ("POST", "/v1/transit/encrypt/orders", {"plaintext": ""}),
            ("GET", "/v1/transit/keys/orders", None),
            ("POST", "/v1/transit/keys/orders/rotate", None),
        ):
            answer = c.request(method, url, headers=AUTH, json=body)
            assert answer.status_code < 500 or answer.status_code == 503, (url, answer.text)
            for path in (str(tmp_path), str(DEFAULT_MODELS_DIR.parent)):
                assert path not in answer.text, (url, answer.text)

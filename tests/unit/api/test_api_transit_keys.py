"""/v1/transit/keys (api/routers/transit_keys.py): reading for any key, changes for admin keys
only, deletion only when allowed, no export, and the on-disk file as the one source of truth."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, is_problem, make_settings
from nexpo.api.main import create_app
from nexpo.api.transit import create_key, read_keys

ADMIN_KEY = "admin-key-0123456789"
ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "transit.json"
    create_key(path, "orders")
    return path


@pytest.fixture
def transit(tmp_path: Path, keys_file: Path) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, transit_keys_file=keys_file, admin_api_keys=ADMIN_KEY)
    with TestClient(create_app(settings)) as c:
        yield c


CHANGES = [
    ("POST", "/v1/transit/keys/new", {"type": "ed25519"}),
    ("POST", "/v1/transit/keys/orders/rotate", None),
    ("POST", "/v1/transit/keys/orders/config", {"deletion_allowed": True}),
    ("DELETE", "/v1/transit/keys/orders", None),
]


@pytest.mark.parametrize(("method", "url", "body"), CHANGES)
def test_changes_need_an_admin_key(
    transit: TestClient, keys_file: Path, method: str, url: str, body: object
) -> None:
    before = keys_file.read_bytes()
    detail = is_problem(transit.request(method, url, headers=AUTH, json=body), 403)["detail"]
    assert "admin API key" in detail
    assert keys_file.read_bytes() == before


@pytest.mark.parametrize(("method", "url", "body"), CHANGES)
def test_changes_are_refused_without_admin_keys_configured(
    tmp_path: Path, keys_file: Path, method: str, url: str, body: object
) -> None:
    with TestClient(create_app(make_settings(tmp_path, transit_keys_file=keys_file))) as c:
        detail = is_problem(c.request(method, url, headers=AUTH, json=body), 403)["detail"]
        assert "NEXPO_ADMIN_API_KEYS" in detail


def test_read_and_list_need_any_key(transit: TestClient) -> None:
    info = transit.get("/v1/transit/keys/orders", headers=AUTH).json()
    assert info["type"] == "aes256-gcm96" and info["latest_version"] == 1
    assert info["exportable"] is False and info["supports_encryption"] is True
    assert transit.get("/v1/transit/keys", headers=AUTH).json() == {"keys": ["orders"]}
    is_problem(transit.get("/v1/transit/keys/nope", headers=AUTH), 404)
    is_problem(transit.get("/v1/transit/keys/orders"), 401)


def test_create_each_type_and_conflicts(transit: TestClient, keys_file: Path) -> None:
    for name, kind in (("a", "aes256-gcm96"), ("c", "chacha20-poly1305"), ("e", "ed25519")):
        answer = transit.post(f"/v1/transit/keys/{name}", headers=ADMIN, json={"type": kind})
        assert answer.status_code == 200, answer.text
        assert answer.json()["type"] == kind
    assert transit.post("/v1/transit/keys/d", headers=ADMIN).json()["type"] == "aes256-gcm96"  # no body
    public = transit.get("/v1/transit/keys/e", headers=AUTH).json()["keys"]["1"]["public_key"]
    assert len(base64.b64decode(public)) == 32
    assert "already exists" in is_problem(transit.post("/v1/transit/keys/a", headers=ADMIN), 409)["detail"]
    is_problem(transit.post("/v1/transit/keys/x", headers=ADMIN, json={"type": "rsa-2048"}), 422)
    for unsupported in ({"derived": True}, {"convergent_encryption": True}, {"auto_rotate_period": "1h"}):
        is_problem(transit.post("/v1/transit/keys/x", headers=ADMIN, json=unsupported), 422)
    assert (
        "export is disabled"
        in is_problem(transit.post("/v1/transit/keys/x", headers=ADMIN, json={"exportable": True}), 400)[
            "detail"
        ]
    )
    assert set(read_keys(keys_file)) == {"orders", "a", "c", "d", "e"}
    # new keys serve at once in this worker
    token = transit.post("/v1/transit/sign/e", headers=AUTH, json={"input": ""}).json()["signature"]
    assert token.startswith("nexpo:v1:")


def test_config_rules(transit: TestClient) -> None:
    transit.post("/v1/transit/keys/orders/rotate", headers=ADMIN)
    config = "/v1/transit/keys/orders/config"
    assert (
        "between 1 and 2"
        in is_problem(transit.post(config, headers=ADMIN, json={"min_decryption_version": 3}), 400)["detail"]
    )
    assert (
        "cannot be below"
        in is_problem(
            transit.post(
                config, headers=ADMIN, json={"min_decryption_version": 2, "min_encryption_version": 1}
            ),
            400,
        )["detail"]
    )
    is_problem(transit.post(config, headers=ADMIN, json={"min_decryption_version": 0}), 422)
    is_problem(transit.post(config, headers=ADMIN, json={"exportable": True}), 400)
    ok = transit.post(config, headers=ADMIN, json={"min_encryption_version": 2}).json()
    assert (ok["min_encryption_version"], ok["min_decryption_version"]) == (2, 1)
    is_problem(transit.post("/v1/transit/keys/nope/config", headers=ADMIN, json={}), 404)
    is_problem(transit.post("/v1/transit/keys/nope/rotate", headers=ADMIN), 404)


def test_deletion_rules(transit: TestClient, keys_file: Path) -> None:
    refused = is_problem(transit.delete("/v1/transit/keys/orders", headers=ADMIN), 400)
    assert "deletion is not allowed" in refused["detail"]
    assert "orders" in read_keys(keys_file)
    allowed = transit.post("/v1/transit/keys/orders/config", headers=ADMIN, json={"deletion_allowed": True})
    assert allowed.json()["deletion_allowed"] is True
    assert transit.delete("/v1/transit/keys/orders", headers=ADMIN).status_code == 204
    assert "orders" not in read_keys(keys_file)
    is_problem(transit.post("/v1/transit/encrypt/orders", headers=AUTH, json={"plaintext": ""}), 404)
    is_problem(transit.delete("/v1/transit/keys/orders", headers=ADMIN), 404)


def test_there_is_no_export_endpoint(transit: TestClient) -> None:
    for url in ("/v1/transit/export/encryption-key/orders", "/v1/transit/backup/orders"):
        assert transit.get(url, headers=ADMIN).status_code in (404, 405)
    schema = transit.get("/openapi.json").json()
    assert not [path for path in schema["paths"] if "export" in path or "backup" in path]


def test_a_read_only_keys_file_is_503_without_the_path(
    transit: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nexpo.api.transit import store

    def read_only(*_: object) -> None:
        raise OSError(30, "Read-only file system", str(tmp_path))

    monkeypatch.setattr(store, "write_atomically", read_only)
    answer = transit.post("/v1/transit/keys/orders/rotate", headers=ADMIN)
    assert "Read-only file system" in is_problem(answer, 503)["detail"]
    assert str(tmp_path) not in answer.text

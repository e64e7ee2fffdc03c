"""api/middleware/auth.py: API keys, constant-time match, generated default key, never logged."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from gateway_helpers import API_KEY, AUTH, make_settings
from nexpo.api.main import create_app
from nexpo.api.middleware.auth import ApiKeys, ensure_generated_key, read_key_file, resolve_keys


def test_api_keys_match_returns_a_fingerprint_not_the_key() -> None:
    keys = ApiKeys(["alpha", "beta"])
    assert keys.match(b"alpha") is not None
    assert keys.match(b"beta") is not None
    assert keys.match(b"alpha") != keys.match(b"beta")
    assert "alpha" not in str(keys.match(b"alpha"))
    assert keys.match(b"alph") is None
    assert keys.match(b"") is None
    with pytest.raises(ValueError, match="at least one"):
        ApiKeys([])


def test_v1_requires_a_key(client: TestClient) -> None:
    response = client.get("/v1/ping")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "missing API key" in response.json()["detail"]
    assert client.get("/v1/ping", headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.get("/v1/ping", headers={"Authorization": "Basic abc"}).status_code == 401


def test_both_header_forms_are_accepted(client: TestClient) -> None:
    assert client.get("/v1/ping", headers=AUTH).status_code == 200
    assert client.get("/v1/ping", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
    assert client.get("/v1/ping", headers={"Authorization": f"bearer {API_KEY}"}).status_code == 200


def test_probes_and_docs_are_open(client: TestClient) -> None:
    for path in ("/livez", "/readyz", "/metrics", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_keys_file_and_several_keys(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("# comment\nfile-key-1\n\nfile-key-2\n")
    settings = make_settings(tmp_path, api_keys="env-key", api_keys_file=keys_file)
    assert settings.configured_keys == ("env-key", "file-key-1", "file-key-2")
    with TestClient(create_app(settings)) as c:
        for key in settings.configured_keys:
            assert c.get("/v1/ping", headers={"X-API-Key": key}).status_code == 200
        assert c.get("/v1/ping", headers={"X-API-Key": "# comment"}).status_code == 401


def test_default_generates_a_private_key_file_and_reuses_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    source = resolve_keys((), auth_disabled=False, state_dir=state)
    assert source is not None
    path = Path(source.origin)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(source.keys) == 1
    assert len(source.keys[0]) >= 40
    assert ensure_generated_key(state) == path
    assert read_key_file(path) == source.keys
    settings = make_settings(tmp_path, api_keys=None)
    with TestClient(create_app(settings)) as c:
        assert c.get("/v1/ping").status_code == 401
        assert c.get("/v1/ping", headers={"X-API-Key": source.keys[0]}).status_code == 200


def test_auth_can_be_disabled_explicitly(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, api_keys=None, auth_disabled=True))) as c:
        assert c.get("/v1/ping").status_code == 200
        assert c.get("/v1/info").json()["auth"] is False


def test_keys_are_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(make_settings(tmp_path))) as c:
        c.get("/v1/ping", headers=AUTH)
        c.get("/v1/ping", headers={"X-API-Key": "attempted-secret"})
    assert API_KEY not in caplog.text
    assert "attempted-secret" not in caplog.text


@pytest.mark.timeout(60)  # reading a FIFO blocked the startup forever
def test_an_api_keys_file_that_is_a_fifo_or_a_device_fails_fast(tmp_path: Path) -> None:
    fifo = tmp_path / "keys.fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"NEXPO_API_KEYS_FILE .*a FIFO"):
        _ = make_settings(tmp_path, api_keys=None, api_keys_file=fifo).configured_keys
    with pytest.raises(ValueError, match=r"NEXPO_API_KEYS_FILE .*character device"):
        _ = make_settings(tmp_path, api_keys=None, api_keys_file=Path("/dev/zero")).configured_keys
    with pytest.raises(ValueError, match=r"API key file .*a FIFO"):
        read_key_file(fifo)

"""api/transit/store.py and /v1/transit (api/routers/transit.py): key file format, rotation,
tokens, tampering, domain errors as problems, and the keys file as hostile input (concurrent
rotations, FIFOs, devices, absurd nesting, broken rewrites)."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from gateway_helpers import AUTH, is_problem, make_settings
from nexpo.api import transit as transit_module
from nexpo.api.main import create_app
from nexpo.api.transit import (
    KeyExists,
    KeyNotFound,
    Keyring,
    TransitError,
    create_key,
    parse_keys,
    read_keys,
    rotate_key,
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    path = tmp_path / "transit.json"
    create_key(path, "orders")
    create_key(path, "other")
    return path


@pytest.fixture
def transit(tmp_path: Path, keys_file: Path) -> TestClient:
    with TestClient(create_app(make_settings(tmp_path, transit_keys_file=keys_file))) as c:
        yield c


def _encrypt(c: TestClient, key: str, data: bytes, context: bytes | None = None) -> dict[str, object]:
    payload: dict[str, str] = {"plaintext": b64(data)}
    if context is not None:
        payload["context"] = b64(context)
    response = c.post(f"/v1/transit/{key}/encrypt", headers=AUTH, json=payload)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _decrypt(c: TestClient, key: str, token: str, context: bytes | None = None):  # type: ignore[no-untyped-def]
    payload = {"ciphertext": token}
    if context is not None:
        payload["context"] = b64(context)
    return c.post(f"/v1/transit/{key}/decrypt", headers=AUTH, json=payload)


def test_key_file_is_private_and_round_trips(keys_file: Path) -> None:
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    keys = read_keys(keys_file)
    assert set(keys) == {"orders", "other"}
    assert keys["orders"].latest == 1
    with pytest.raises(KeyExists, match="already exists"):
        create_key(keys_file, "orders")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ({"keys": {"bad name": {"versions": {"1": b64(bytes(32))}}}}, "must match"),
        ({"keys": {"k": {"versions": {}}}}, "non-empty"),
        ({"keys": {"k": {"versions": {"1": b64(bytes(16))}}}}, "32 bytes"),
        ({"keys": {"k": {"versions": {"x": b64(bytes(32))}}}}, "positive integer"),
        ({"keys": {"k": {"versions": {"1": "!!"}}}}, "base64"),
        ({"keys": {"k": {"versions": {"1": b64(bytes(32))}, "min_decryption_version": 2}}}, "min_decryption"),
    ],
)
def test_key_file_errors(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_keys(data)


def test_encrypt_decrypt_round_trip(transit: TestClient) -> None:
    for data in (b"", b"secret", bytes(range(256)) * 100):
        sealed = _encrypt(transit, "orders", data)
        assert str(sealed["ciphertext"]).startswith("nexpo:v1:")
        assert sealed["key_version"] == 1
        opened = _decrypt(transit, "orders", str(sealed["ciphertext"])).json()
        assert base64.b64decode(opened["plaintext"]) == data
    # random nonces: the same plaintext seals differently
    assert _encrypt(transit, "orders", b"x")["ciphertext"] != _encrypt(transit, "orders", b"x")["ciphertext"]


def test_tampering_wrong_key_or_context_is_400(transit: TestClient) -> None:
    token = str(_encrypt(transit, "orders", b"payload", context=b"tenant-1")["ciphertext"])
    assert _decrypt(transit, "orders", token, context=b"tenant-1").status_code == 200
    prefix, body = token.rsplit(":", 1)
    raw = bytearray(base64.b64decode(body))
    for position in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        altered = bytearray(raw)
        altered[position] ^= 1
        detail = is_problem(_decrypt(transit, "orders", f"{prefix}:{b64(bytes(altered))}", b"tenant-1"), 400)
        assert "altered" in detail["detail"]
    is_problem(_decrypt(transit, "orders", token, context=b"tenant-2"), 400)
    is_problem(_decrypt(transit, "orders", token), 400)
    is_problem(_decrypt(transit, "other", token, context=b"tenant-1"), 400)
    is_problem(_decrypt(transit, "orders", "nexpo:v9:" + body, context=b"tenant-1"), 400)
    for malformed in ("", "nexpo:v1:", "vault:v1:abc", "nexpo:v0:AAAA", "nexpo:v1:@@@@", "nexpo:v1:AAAA"):
        is_problem(_decrypt(transit, "orders", malformed), 400)


def test_unknown_key_is_404_and_bad_names_422(transit: TestClient) -> None:
    is_problem(transit.post("/v1/transit/nope/encrypt", headers=AUTH, json={"plaintext": ""}), 404)
    is_problem(transit.post("/v1/transit/bad%20name/encrypt", headers=AUTH, json={"plaintext": ""}), 422)
    is_problem(transit.post("/v1/transit/orders/encrypt", headers=AUTH, json={"plaintext": "!"}), 422)


def test_rotation_keeps_old_versions_decryptable(tmp_path: Path, keys_file: Path) -> None:
    settings = make_settings(tmp_path, transit_keys_file=keys_file)
    with TestClient(create_app(settings)) as c:
        old = str(_encrypt(c, "orders", b"before")["ciphertext"])
        rotated = rotate_key(keys_file, "orders")
        assert rotated.latest == 2
        gateway = c.app.state.gateway  # type: ignore[attr-defined]
        gateway.keyring._checked = time.monotonic() - 10  # do not wait for the once-a-second check
        new = _encrypt(c, "orders", b"after")
        assert str(new["ciphertext"]).startswith("nexpo:v2:")
        assert base64.b64decode(_decrypt(c, "orders", old).json()["plaintext"]) == b"before"
        assert _decrypt(c, "orders", old).json()["key_version"] == 1
        # raising min_decryption_version retires v1
        data = json.loads(keys_file.read_text())
        data["keys"]["orders"]["min_decryption_version"] = 2
        keys_file.write_text(json.dumps(data))
        gateway.keyring._checked = time.monotonic() - 10
        assert "min_decryption_version" in is_problem(_decrypt(c, "orders", old), 400)["detail"]


def test_default_keys_file_is_created_on_first_start(client: TestClient, settings: object) -> None:
    sealed = _encrypt(client, "default", b"zero setup")
    assert (
        base64.b64decode(_decrypt(client, "default", str(sealed["ciphertext"])).json()["plaintext"])
        == b"zero setup"
    )


def test_a_token_with_a_trailing_newline_is_rejected(transit: TestClient) -> None:
    token = str(_encrypt(transit, "orders", b"exact")["ciphertext"])
    assert _decrypt(transit, "orders", token).status_code == 200
    for suffix in ("\n", "\r\n", " ", "\x00"):  # ``$`` accepted the newline
        assert "malformed" in is_problem(_decrypt(transit, "orders", token + suffix), 400)["detail"]
    with pytest.raises(TransitError, match="malformed"):
        Keyring(read_keys(transit.app.state.gateway.keyring.path)).decrypt("orders", token + "\n")  # type: ignore[attr-defined]
    material = b64(bytes(32))
    with pytest.raises(ValueError, match="must match"):
        parse_keys({"keys": {"orders\n": {"versions": {"1": material}}}})


def test_concurrent_rotations_lose_no_version(keys_file: Path) -> None:
    with ThreadPoolExecutor(16) as pool:
        rotated = list(pool.map(lambda _: rotate_key(keys_file, "orders"), range(40)))
    final = read_keys(keys_file)["orders"]
    assert sorted(final.versions) == list(range(1, 42))  # read-modify-write without a lock lost some
    assert sorted(key.latest for key in rotated) == list(range(2, 42))
    for key in rotated:  # the material each rotation created is the material kept
        assert final.versions[key.latest] == key.versions[key.latest]
    assert sorted(p.name for p in keys_file.parent.iterdir()) == [".transit.json.lock", "transit.json"]


@contextmanager
def _transit_errors() -> Iterator[list[str]]:
    """The error lines the gateway logs about transit keys."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR and "transit keys" in record.getMessage():
                lines.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("api")
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def _unusable(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "keys.json"
    if kind == "nested":
        path.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    elif kind == "too-big":
        path.write_bytes(b" " * (transit_module.MAX_KEYS_FILE_BYTES + 1))
    return path


@pytest.mark.timeout(60)  # the FIFO hung the startup, /dev/zero grew memory without bound
@pytest.mark.parametrize("kind", ["nested", "fifo", "dev-zero", "directory", "too-big"])
def test_an_unusable_keys_file_at_start_is_503_and_one_log_line(tmp_path: Path, kind: str) -> None:
    path = _unusable(tmp_path, kind)
    app = create_app(make_settings(tmp_path, transit_keys_file=path))
    with _transit_errors() as errors, TestClient(app) as c:
        assert c.get("/readyz").status_code == 200  # the rest of the service starts
        for _ in range(2):
            c.app.state.gateway.keyring._checked = time.monotonic() - 10  # type: ignore[attr-defined]
            answer = c.post("/v1/transit/orders/encrypt", headers=AUTH, json={"plaintext": ""})
            body = is_problem(answer, 503)
            assert "transit keys are unavailable" in body["detail"]
            assert str(tmp_path) not in answer.text
    assert len(errors) == 1, errors
    assert "/v1/transit answers 503" in errors[0]


def test_a_broken_rewrite_keeps_the_last_good_keys_and_says_so(tmp_path: Path, keys_file: Path) -> None:
    good = keys_file.read_text()
    settings = make_settings(tmp_path, transit_keys_file=keys_file)
    with _transit_errors() as errors, TestClient(create_app(settings)) as c:
        keyring = c.app.state.gateway.keyring  # type: ignore[attr-defined]
        token = str(_encrypt(c, "orders", b"kept")["ciphertext"])
        for broken in ('{"keys": {"orders": ', "[" * 100_000):  # e.g. a revocation cut short
            keys_file.write_text(broken)
            for _ in range(3):  # one log line per change of the file, not one per check
                keyring._checked = time.monotonic() - 10
                assert _decrypt(c, "orders", token).status_code == 200
        assert len(errors) == 2, errors
        assert all("keeping the keys loaded before" in line for line in errors)
        keys_file.write_text(good)
        keyring._checked = time.monotonic() - 10
        assert _decrypt(c, "orders", token).status_code == 200
        assert keyring.error is None


def test_keys_fixed_after_a_bad_start_are_picked_up(tmp_path: Path) -> None:
    path = _unusable(tmp_path, "nested")
    with TestClient(create_app(make_settings(tmp_path, transit_keys_file=path))) as c:
        is_problem(c.post("/v1/transit/orders/encrypt", headers=AUTH, json={"plaintext": ""}), 503)
        path.unlink()
        create_key(path, "orders")
        c.app.state.gateway.keyring._checked = time.monotonic() - 10  # type: ignore[attr-defined]
        assert c.post("/v1/transit/orders/encrypt", headers=AUTH, json={"plaintext": ""}).status_code == 200


def test_an_unwritable_state_dir_is_503_without_the_path(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.write_text("a file where the state directory should be")
    with TestClient(create_app(make_settings(tmp_path, api_keys="k" * 20, state_dir=state))) as c:
        answer = c.post(
            "/v1/transit/default/encrypt", headers={"X-API-Key": "k" * 20}, json={"plaintext": ""}
        )
        assert "transit keys are unavailable" in is_problem(answer, 503)["detail"]
        assert str(tmp_path) not in answer.text


def test_rotate_of_a_missing_key_is_key_not_found(keys_file: Path) -> None:
    with pytest.raises(KeyNotFound):
        rotate_key(keys_file, "missing")
    assert read_keys(keys_file)["orders"].latest == 1


def test_a_transit_error_the_router_does_not_expect_is_a_500() -> None:
    from nexpo.api.routers.transit import _as_problems

    with pytest.raises(KeyExists), _as_problems():
        raise KeyExists("not an error of a request")

"""api/transit/store.py: format 2 with key types, files written before key types still load (and
migrate on the next change without changing a byte of key material), configure/delete rules, and
changes from many threads at once losing nothing while others encrypt."""

from __future__ import annotations

import base64
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from nexpo.api.transit import (
    AES256_GCM96,
    CHACHA20_POLY1305,
    ED25519,
    DeletionNotAllowed,
    InvalidRequest,
    Keyring,
    KeyringFile,
    KeysUnavailable,
    configure_key,
    create_key,
    delete_key,
    parse_keys,
    read_keys,
    rotate_key,
)

# Written by the store before key types existed (format 1), with a token its keyring sealed:
# ChaCha20-Poly1305, context b"tenant-1", plaintext b"sealed before key types".
FORMAT_1_FILE = {
    "keys": {
        "orders": {
            "versions": {
                "1": "Xl2Tq0ylHmxXKvZ/n3MNEQ6yUgJgEM2BcgTPbXDG3Hc=",
                "2": "a5EtRoXGoxTWWKaJ/kZdyqAAt8AMr4W9XKB9bbTdPzQ=",
            },
            "min_decryption_version": 1,
        }
    }
}
FORMAT_1_TOKEN = "nexpo:v2:rVTANkbS4Px25rjaevMPlPIHg2ZSkQ43cF0eKdpwbItQ8Am/DdJZPHtV34mvklV+JTKd"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_a_format_1_file_loads_decrypts_and_migrates(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(FORMAT_1_FILE))
    key = read_keys(path)["orders"]
    assert (key.type, key.latest, key.min_encryption_version, key.deletion_allowed) == (
        CHACHA20_POLY1305,
        2,
        0,
        False,
    )
    ring = Keyring(read_keys(path))
    assert ring.decrypt("orders", FORMAT_1_TOKEN, b"tenant-1") == (b"sealed before key types", 2)
    mac = ring.hmac("orders", b"data")[0]
    rotate_key(path, "orders")  # the first change writes format 2
    data = json.loads(path.read_text())
    assert data["format"] == 2 and data["keys"]["orders"]["type"] == CHACHA20_POLY1305
    for version in ("1", "2"):
        stored = data["keys"]["orders"]["versions"][version]
        assert stored["key"] == FORMAT_1_FILE["keys"]["orders"]["versions"][version]  # type: ignore[index]
    migrated = Keyring(read_keys(path))
    assert migrated.decrypt("orders", FORMAT_1_TOKEN, b"tenant-1")[0] == b"sealed before key types"
    assert migrated.verify_hmac("orders", b"data", mac)  # the derived HMAC key was kept
    assert migrated.key("orders").latest == 3


def test_format_2_round_trips_every_field(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    for name, kind in (("a", AES256_GCM96), ("c", CHACHA20_POLY1305), ("e", ED25519)):
        assert create_key(path, name, kind).type == kind
    rotate_key(path, "a")
    configure_key(path, "a", 2, 2, True)
    keys = read_keys(path)
    assert {k: v.type for k, v in keys.items()} == {"a": AES256_GCM96, "c": CHACHA20_POLY1305, "e": ED25519}
    a = keys["a"]
    assert (a.min_decryption_version, a.min_encryption_version, a.deletion_allowed) == (2, 2, True)
    assert all(v.created > 0 and v.hmac_key != v.material for v in a.versions.values())


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "rsa", "versions": {"1": b64(bytes(32))}}, "unknown type"),
        ({"type": 1, "versions": {"1": b64(bytes(32))}}, "type must be str"),
        ({"versions": {"1": {"key": b64(bytes(32))}}}, "hmac_key is not base64"),
        ({"versions": {"1": {"key": b64(bytes(32)), "hmac_key": b64(bytes(8))}}}, "need 32 bytes"),
        ({"versions": {"1": {"key": b64(bytes(32)), "hmac_key": b64(bytes(32)), "created": -1}}}, "created"),
        ({"versions": {"1": 5}}, "base64 or an object"),
        ({"versions": {"1": b64(bytes(32))}, "deletion_allowed": "yes"}, "deletion_allowed must be bool"),
        ({"versions": {"1": b64(bytes(32))}, "min_encryption_version": 2}, "min_encryption_version"),
        ({"versions": {"1": b64(bytes(32))}, "min_decryption_version": True}, "must be int"),
    ],
)
def test_format_2_errors(entry: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_keys({"format": 2, "keys": {"k": entry}})
    with pytest.raises(ValueError, match="format 3"):
        parse_keys({"format": 3, "keys": {}})


def test_delete_only_when_allowed(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    create_key(path, "k")
    with pytest.raises(DeletionNotAllowed, match="deletion is not allowed"):
        delete_key(path, "k")
    assert "k" in read_keys(path)
    configure_key(path, "k", deletion_allowed=True)
    delete_key(path, "k")
    assert read_keys(path) == {}
    create_key(path, "x")
    with pytest.raises(InvalidRequest):
        configure_key(path, "x", min_decryption_version=2)
    assert read_keys(path)["x"].min_decryption_version == 1  # a refused change writes nothing


def test_concurrent_rotations_and_configs_while_encrypting(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    create_key(path, "k")
    keyring = KeyringFile(path, check_every_s=0.0)
    stop = threading.Event()
    tokens: list[str] = []

    def encrypt_until_stopped() -> None:
        while not stop.is_set():
            tokens.append(keyring.current().encrypt("k", b"data")[0])

    encrypters = [threading.Thread(target=encrypt_until_stopped) for _ in range(2)]
    for thread in encrypters:
        thread.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            jobs = [pool.submit(rotate_key, path, "k") for _ in range(20)]
            jobs += [pool.submit(configure_key, path, "k", None, None, i % 2 == 0) for i in range(10)]
            for job in jobs:
                job.result(timeout=60)
    finally:
        stop.set()
        for thread in encrypters:
            thread.join(timeout=60)
    final = read_keys(path)["k"]
    assert sorted(final.versions) == list(range(1, 22))  # no rotation lost to a config change
    ring = Keyring({"k": final})
    assert tokens and all(ring.decrypt("k", token)[0] == b"data" for token in tokens)


def test_a_change_is_seen_at_once_by_its_own_process(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    create_key(path, "k")
    keyring = KeyringFile(path, check_every_s=3600)
    key = keyring.change(rotate_key, "k")
    assert key.latest == 2 and keyring.current().key("k").latest == 2


def test_a_read_only_keys_file_is_keys_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "keys.json"
    create_key(path, "k")
    keyring = KeyringFile(path)

    def read_only(*_: object) -> None:
        raise OSError(30, "Read-only file system", str(path))

    with pytest.raises(KeysUnavailable, match="Read-only file system") as raised:
        keyring.change(read_only)
    assert str(tmp_path) not in str(raised.value)

    def locked_elsewhere(*_: object) -> None:
        raise TimeoutError("another process held the lock on keys.json for over 10 s")

    with pytest.raises(KeysUnavailable, match="cannot be changed now"):
        keyring.change(locked_elsewhere)
    time.sleep(0)  # the keyring still serves
    assert keyring.current().key("k").latest == 1

"""api/transit/keyring.py: the transit domain raises its own errors and knows nothing of HTTP;
tokens, rewrap, data keys, HMAC, signatures and the version rules."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
from nexpo.api.transit import (
    AES256_GCM96,
    CHACHA20_POLY1305,
    ED25519,
    InvalidRequest,
    InvalidToken,
    KeyNotFound,
    Keyring,
    TransitError,
    TransitKey,
)
from nexpo.api.transit.keyring import wipe


def test_the_domain_raises_domain_errors_not_http() -> None:
    from starlette.exceptions import HTTPException

    ring = Keyring({})
    with pytest.raises(KeyNotFound, match="no transit key named 'nope'"):
        ring.encrypt("nope", b"")
    ring = Keyring({"orders": TransitKey.generate("orders")})
    with pytest.raises(InvalidToken, match="malformed"):
        ring.decrypt("orders", "vault:v1:abc")
    assert not issubclass(TransitError, HTTPException)
    code = "import sys, nexpo.api.transit; sys.exit('starlette' in sys.modules or 'fastapi' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_new_keys_are_aes_gcm_by_default() -> None:
    assert TransitKey.generate("k").type == AES256_GCM96
    with pytest.raises(InvalidRequest, match="unknown key type"):
        TransitKey.generate("k", "rsa-4096")
    with pytest.raises(InvalidRequest, match="must match"):
        TransitKey.generate("bad name")


@pytest.mark.parametrize("kind", [AES256_GCM96, CHACHA20_POLY1305])
def test_tokens_open_only_with_their_key_version_and_context(kind: str) -> None:
    key = TransitKey.generate("orders", kind)
    ring = Keyring({"orders": key})
    token, version = ring.encrypt("orders", b"payload", b"tenant-1")
    assert token.startswith("nexpo:v1:")
    assert (version, ring.decrypt("orders", token, b"tenant-1")) == (1, (b"payload", 1))
    with pytest.raises(InvalidToken, match="altered or belongs to another key or context"):
        ring.decrypt("orders", token, b"tenant-2")
    rotated = Keyring({"orders": key.rotated()})
    assert rotated.encrypt("orders", b"")[1] == 2
    assert rotated.decrypt("orders", token, b"tenant-1") == (b"payload", 1)
    retired = Keyring({"orders": key.rotated().configured(min_decryption_version=2)})
    with pytest.raises(InvalidToken, match="below min_decryption_version"):
        retired.decrypt("orders", token, b"tenant-1")
    prefix, body = token.rsplit(":", 1)
    short = base64.b64encode(base64.b64decode(body)[:20]).decode()
    with pytest.raises(InvalidToken, match="too short"):
        ring.decrypt("orders", f"{prefix}:{short}")


def test_rewrap_moves_a_token_to_the_latest_version() -> None:
    key = TransitKey.generate("k")
    token, _ = Keyring({"k": key}).encrypt("k", b"secret", b"ctx")
    ring = Keyring({"k": key.rotated().rotated()})
    rewrapped, version = ring.rewrap("k", token, b"ctx")
    assert version == 3 and rewrapped.startswith("nexpo:v3:")
    assert ring.decrypt("k", rewrapped, b"ctx") == (b"secret", 3)
    with pytest.raises(InvalidToken):
        ring.rewrap("k", token, b"wrong context")


def test_key_versions_for_new_tokens() -> None:
    key = TransitKey.generate("k").rotated().rotated()  # v1..v3
    ring = Keyring({"k": key})
    assert ring.encrypt("k", b"", key_version=2)[1] == 2
    with pytest.raises(InvalidRequest, match=r"use 1\.\.3"):
        ring.encrypt("k", b"", key_version=4)
    floor = Keyring({"k": key.configured(min_encryption_version=3)})
    with pytest.raises(InvalidRequest, match=r"use 3\.\.3"):
        floor.encrypt("k", b"", key_version=2)
    assert floor.encrypt("k", b"")[1] == 3


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"min_decryption_version": 0}, "between 1 and 2"),
        ({"min_decryption_version": 3}, "between 1 and 2"),
        ({"min_encryption_version": 3}, "between 0 and 2"),
        ({"min_decryption_version": 2, "min_encryption_version": 1}, "cannot be below"),
    ],
)
def test_configuration_is_checked(settings: dict[str, int], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        TransitKey.generate("k").rotated().configured(**settings)


def test_datakey_is_sealed_by_the_key() -> None:
    ring = Keyring({"k": TransitKey.generate("k")})
    for bits in (128, 256, 512):
        data_key, token, version = ring.datakey("k", bits, b"ctx")
        assert len(data_key) == bits // 8 and version == 1
        assert ring.decrypt("k", token, b"ctx") == (data_key, 1)
        wipe(data_key)  # a bytearray, so the caller can wipe it
        assert data_key == bytes(bits // 8)
    with pytest.raises(InvalidRequest, match="bits must be one of 128, 256, 512"):
        ring.datakey("k", 64)


@pytest.mark.parametrize("kind", [AES256_GCM96, CHACHA20_POLY1305, ED25519])
def test_hmac_uses_its_own_key_per_version(kind: str) -> None:
    key = TransitKey.generate("k", kind)
    ring = Keyring({"k": key.rotated()})
    mac_v1, version = ring.hmac("k", b"data", key_version=1)
    mac_v2, _ = ring.hmac("k", b"data")
    assert (version, mac_v1[:9], mac_v2[:9]) == (1, "nexpo:v1:", "nexpo:v2:")
    assert mac_v1.split(":")[2] != mac_v2.split(":")[2]
    assert ring.verify_hmac("k", b"data", mac_v1) and ring.verify_hmac("k", b"data", mac_v2)
    assert not ring.verify_hmac("k", b"datA", mac_v1)
    assert ring.verify_hmac("k", b"data", ring.hmac("k", b"data", "sha2-512")[0], "sha2-512")
    assert not ring.verify_hmac("k", b"data", mac_v2, "sha2-512")
    retired = Keyring({"k": key.rotated().configured(min_decryption_version=2)})
    with pytest.raises(InvalidToken, match="below min_decryption_version"):
        retired.verify_hmac("k", b"data", mac_v1)
    with pytest.raises(InvalidToken, match="malformed hmac"):
        ring.verify_hmac("k", b"data", "vault:v1:AAAA")


def test_sign_and_verify_with_ed25519() -> None:
    key = TransitKey.generate("signer", ED25519)
    ring = Keyring({"signer": key})
    signature, version = ring.sign("signer", b"transaction")
    assert version == 1 and signature.startswith("nexpo:v1:")
    assert ring.verify("signer", b"transaction", signature)
    assert not ring.verify("signer", b"transactioN", signature)
    rotated = Keyring({"signer": key.rotated()})
    assert rotated.sign("signer", b"x")[1] == 2
    assert rotated.verify("signer", b"transaction", signature)  # v1 still verifies
    with pytest.raises(InvalidRequest, match="do not encrypt"):
        ring.encrypt("signer", b"")
    aes = Keyring({"k": TransitKey.generate("k")})
    with pytest.raises(InvalidRequest, match="do not sign"):
        aes.sign("k", b"")
    with pytest.raises(InvalidToken, match="malformed signature"):
        ring.verify("signer", b"", "nexpo:v1:@@")


def test_describe_shows_public_keys_never_secrets() -> None:
    key = TransitKey.generate("signer", ED25519).rotated()
    info = key.describe()
    assert (info["type"], info["latest_version"], info["supports_signing"]) == (ED25519, 2, True)
    assert info["exportable"] is False and info["supports_encryption"] is False
    assert len(base64.b64decode(info["keys"]["1"]["public_key"])) == 32
    text = repr(info) + repr(key)
    for version in key.versions.values():
        for secret in (version.material, version.hmac_key):
            assert base64.b64encode(secret).decode() not in text
            assert repr(secret) not in text
    aes = TransitKey.generate("k").describe()
    assert isinstance(aes["keys"]["1"], int) and aes["supports_decryption"] is True

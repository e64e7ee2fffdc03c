"""api/transit/keytypes.py: each key type's primitives, HMAC keys apart from the key material."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from nexpo.api.transit import AES256_GCM96, CHACHA20_POLY1305, ED25519, InvalidRequest, InvalidToken
from nexpo.api.transit.keytypes import (
    derive_hmac_key,
    hmac_of,
    key_type,
    new_cipher,
    new_material,
    open_sealed,
    public_key,
    seal,
    sign,
    verify,
)


@pytest.mark.parametrize("name", [AES256_GCM96, CHACHA20_POLY1305])
def test_aead_types_round_trip_and_detect_every_tampering(name: str) -> None:
    cipher = new_cipher(key_type(name), new_material())
    for data in (b"", b"x", bytes(range(256)) * 5):
        body = seal(cipher, data, b"aad")
        assert len(body) == 12 + len(data) + 16
        assert open_sealed(cipher, body, b"aad") == data
    body = seal(cipher, b"payload", b"aad")
    for position in range(len(body)):  # nonce, ciphertext and tag alike
        altered = bytearray(body)
        altered[position] ^= 0x80
        with pytest.raises(InvalidToken, match="altered"):
            open_sealed(cipher, bytes(altered), b"aad")
    with pytest.raises(InvalidToken, match="altered"):
        open_sealed(cipher, body, b"other aad")
    with pytest.raises(InvalidToken, match="altered"):
        open_sealed(new_cipher(key_type(name), new_material()), body, b"aad")
    with pytest.raises(InvalidToken, match="too short"):
        open_sealed(cipher, body[:27], b"aad")


def test_aes_and_chacha_tokens_do_not_open_each_other() -> None:
    key = new_material()
    body = seal(new_cipher(key_type(AES256_GCM96), key), b"data", b"")
    with pytest.raises(InvalidToken):
        open_sealed(new_cipher(key_type(CHACHA20_POLY1305), key), body, b"")


def test_ed25519_signs_and_verifies_but_does_not_encrypt() -> None:
    kind, seed = key_type(ED25519), new_material()
    public = public_key(kind, seed)
    assert public is not None and len(public) == 32
    signature = sign(kind, seed, b"message")
    assert len(signature) == 64
    assert verify(kind, public, b"message", signature)
    assert not verify(kind, public, b"messagE", signature)
    assert not verify(kind, public, b"message", bytes([signature[0] ^ 1]) + signature[1:])
    with pytest.raises(InvalidToken, match="64 bytes"):
        verify(kind, public, b"message", signature[:63])
    with pytest.raises(InvalidRequest, match="do not encrypt"):
        new_cipher(kind, seed)
    with pytest.raises(InvalidRequest, match="do not decrypt"):
        new_cipher(kind, seed, "decrypt")


def test_aead_types_do_not_sign() -> None:
    kind = key_type(AES256_GCM96)
    assert public_key(kind, new_material()) is None
    with pytest.raises(InvalidRequest, match="do not sign"):
        sign(kind, new_material(), b"")
    with pytest.raises(InvalidRequest, match="do not verify"):
        verify(kind, bytes(32), b"", bytes(64))


def test_unknown_type_and_algorithm_are_invalid_requests() -> None:
    with pytest.raises(InvalidRequest, match="unknown key type 'rsa-2048'"):
        key_type("rsa-2048")
    with pytest.raises(InvalidRequest, match="unsupported HMAC algorithm 'md5'"):
        hmac_of(bytes(32), b"", "md5")


def test_hmac_algorithms_are_rfc_2104() -> None:
    key = new_material()
    assert hmac_of(key, b"data", "sha2-256") == hmac.new(key, b"data", hashlib.sha256).digest()
    assert hmac_of(key, b"data", "sha2-512") == hmac.new(key, b"data", hashlib.sha512).digest()


def test_derived_hmac_key_is_stable_and_not_the_material() -> None:
    material = new_material()
    assert derive_hmac_key(material) == derive_hmac_key(material)
    assert derive_hmac_key(material) != material
    assert derive_hmac_key(material) != derive_hmac_key(new_material())

"""AES-256-GCM and the ChaCha20-Poly1305 key object against ``cryptography``, on every variant:
sizes around each variant's batch boundaries up to 1 MiB with random AAD, every tamper position
of short messages, and the key objects equal to the one-shot functions.
"""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305 as RefChaCha

import nexpo
from nexpo import crypto

SIZES = [
    0,
    1,
    15,
    16,
    17,
    63,
    64,
    65,
    127,
    128,
    129,
    255,
    256,
    257,
    511,
    512,
    513,
    1023,
    1024,
    4095,
    4096,
    16384,
    65536,
    65536 + 1,
    65536 + 15,
    65536 + 255,
    100_003,
    1 << 20,
]


def _case(rng: random.Random, size: int) -> tuple[bytes, bytes, bytes, bytes]:
    aad_len = rng.choice([0, 1, 12, 16, 31, 100, 256, 700])
    return rng.randbytes(32), rng.randbytes(12), rng.randbytes(size), rng.randbytes(aad_len)


def test_aes_matches_cryptography_every_size(isa: str, rng: random.Random) -> None:
    for size in SIZES:
        key, nonce, pt, aad = _case(rng, size)
        expected = AESGCM(key).encrypt(nonce, pt, aad)
        assert crypto.aes256gcm_encrypt(key, nonce, pt, aad) == expected, (isa, size, len(aad))
        assert crypto.aes256gcm_decrypt(key, nonce, expected, aad) == pt
        obj = crypto.AesGcm(key)
        assert obj.encrypt(nonce, pt, aad) == expected
        assert obj.decrypt(nonce, expected, aad) == pt


def test_aes_long_aad_and_empty_plaintext(isa: str, rng: random.Random) -> None:
    key, nonce = rng.randbytes(32), rng.randbytes(12)
    for aad_len in (0, 15, 16, 17, 255, 256, 257, 511, 512, 513, 5000):
        aad = rng.randbytes(aad_len)
        for pt in (b"", rng.randbytes(rng.randrange(1, 600))):
            expected = AESGCM(key).encrypt(nonce, pt, aad)
            assert crypto.AesGcm(key).encrypt(nonce, pt, aad) == expected, (isa, aad_len, len(pt))
            assert crypto.AesGcm(key).decrypt(nonce, expected, aad) == pt


def test_chacha_key_object_matches_cryptography(isa: str, rng: random.Random) -> None:
    for size in SIZES:
        key, nonce, pt, aad = _case(rng, size)
        expected = RefChaCha(key).encrypt(nonce, pt, aad)
        obj = crypto.ChaCha20Poly1305(key)
        assert obj.encrypt(nonce, pt, aad) == expected, (isa, size)
        assert obj.decrypt(nonce, expected, aad) == pt
        assert crypto.chacha20poly1305_encrypt(key, nonce, pt, aad) == expected


def test_key_objects_equal_the_functions_over_many_nonces(rng: random.Random) -> None:
    key = rng.randbytes(32)
    aes, chacha = crypto.AesGcm(key), crypto.ChaCha20Poly1305(key)
    for _ in range(50):
        nonce, pt = rng.randbytes(12), rng.randbytes(rng.randrange(300))
        aad = rng.randbytes(rng.randrange(40))
        assert aes.encrypt(nonce, pt, aad) == crypto.aes256gcm_encrypt(key, nonce, pt, aad)
        assert chacha.encrypt(nonce, pt, aad) == crypto.chacha20poly1305_encrypt(key, nonce, pt, aad)


def _flips(data: bytes) -> list[bytes]:
    """data with one bit flipped, at every byte position (the bit varies with the position)."""
    out = []
    for i in range(len(data)):
        altered = bytearray(data)
        altered[i] ^= 1 << (i % 8)
        out.append(bytes(altered))
    return out


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 33, 64])
def test_every_tamper_position_is_refused(isa: str, rng: random.Random, size: int) -> None:
    key, nonce, pt, aad = rng.randbytes(32), rng.randbytes(12), rng.randbytes(size), rng.randbytes(20)
    for cls, oneshot in (
        (crypto.AesGcm, crypto.aes256gcm_decrypt),
        (crypto.ChaCha20Poly1305, crypto.chacha20poly1305_decrypt),
    ):
        obj = cls(key)
        sealed = obj.encrypt(nonce, pt, aad)
        for altered in _flips(sealed):  # ciphertext and tag bytes
            with pytest.raises(nexpo.AuthenticationError):
                obj.decrypt(nonce, altered, aad)
        for altered in _flips(aad):
            with pytest.raises(nexpo.AuthenticationError):
                obj.decrypt(nonce, sealed, altered)
        for altered in _flips(nonce):
            with pytest.raises(nexpo.AuthenticationError):
                obj.decrypt(altered, sealed, aad)
        for altered in _flips(key)[::5]:
            with pytest.raises(nexpo.AuthenticationError):
                oneshot(altered, nonce, sealed, aad)
        for wrong_aad in (b"", aad + b"\0", aad[:-1]):
            with pytest.raises(nexpo.AuthenticationError):
                obj.decrypt(nonce, sealed, wrong_aad)
        if size:
            with pytest.raises(nexpo.AuthenticationError):  # truncated ciphertext
                obj.decrypt(nonce, sealed[1:], aad)


@pytest.mark.parametrize("threads", [1, 2])
def test_tampered_large_message_is_refused(isa: str, rng: random.Random, threads: int) -> None:
    """300 kB: over the size where both AEADs split a message between two threads."""
    key, nonce, pt = rng.randbytes(32), rng.randbytes(12), rng.randbytes(300_000)
    previous = nexpo.get_num_threads()
    nexpo.set_num_threads(threads)
    try:
        for cls in (crypto.AesGcm, crypto.ChaCha20Poly1305):
            sealed = bytearray(cls(key).encrypt(nonce, pt, b"aad"))
            for pos in (0, 4096, 150_000, 150_017, len(sealed) - 17, len(sealed) - 1):
                sealed[pos] ^= 0x80
                with pytest.raises(nexpo.AuthenticationError, match="authentication failed"):
                    cls(key).decrypt(nonce, bytes(sealed), b"aad")
                sealed[pos] ^= 0x80
            assert cls(key).decrypt(nonce, bytes(sealed), b"aad") == pt
    finally:
        nexpo.set_num_threads(previous)


def test_a_key_object_made_under_one_variant_works_under_every_other(rng: random.Random) -> None:
    from nexpo import _native

    key, nonce, pt = rng.randbytes(32), rng.randbytes(12), rng.randbytes(1000)
    expected = AESGCM(key).encrypt(nonce, pt, None)
    previous = _native.isa_active()
    try:
        for made in _native.isa_available():
            _native.set_isa(made)
            obj = crypto.AesGcm(key)
            for used in _native.isa_available():
                _native.set_isa(used)
                assert obj.encrypt(nonce, pt) == expected, (made, used)
    finally:
        _native.set_isa(previous)

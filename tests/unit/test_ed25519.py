"""nexpo.crypto's Ed25519 functions: equal to `cryptography` on random keys and messages of
many sizes, tampering at every byte, `ed25519_verify_many` equal to a loop, hostile arguments."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from nexpo.crypto import ed25519_public_key, ed25519_sign, ed25519_verify, ed25519_verify_many

SIZES = [0, 1, 15, 16, 17, 63, 64, 65, 111, 112, 127, 128, 129, 255, 256, 1000, 4096, 65537]


def _reference_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize("size", SIZES)
def test_sign_and_verify_equal_cryptography(size: int) -> None:
    rng = random.Random(size)
    for _ in range(4):
        seed = rng.randbytes(32)
        message = rng.randbytes(size)
        reference = Ed25519PrivateKey.from_private_bytes(seed)
        public = ed25519_public_key(seed)
        assert public == reference.public_key().public_bytes_raw()
        signature = ed25519_sign(seed, message)
        assert signature == reference.sign(message)  # deterministic: bit-identical
        assert ed25519_verify(public, message, signature)


def test_signatures_of_cryptography_verify() -> None:
    for _ in range(20):
        key = Ed25519PrivateKey.generate()
        message = os.urandom(random.randrange(200))
        public = key.public_key().public_bytes_raw()
        assert ed25519_verify(public, message, key.sign(message))


def test_every_tampered_byte_and_bit_position_fails() -> None:
    seed = bytes(range(32))
    message = b"tamper me, 32 bytes long message"
    public = ed25519_public_key(seed)
    signature = ed25519_sign(seed, message)
    for i in range(64):
        for bit in (0x01, 0x80):
            bad = bytearray(signature)
            bad[i] ^= bit
            assert not ed25519_verify(public, message, bytes(bad))
            assert not _reference_verify(public, message, bytes(bad))
    for i in range(len(message)):
        bad_message = bytearray(message)
        bad_message[i] ^= 0x01
        assert not ed25519_verify(public, bytes(bad_message), signature)
    for i in range(32):
        bad_key = bytearray(public)
        bad_key[i] ^= 0x01
        assert ed25519_verify(bytes(bad_key), message, signature) is False
        assert not _reference_verify(bytes(bad_key), message, signature)
    assert not ed25519_verify(public, message + b"!", signature)
    assert not ed25519_verify(public, message[:-1], signature)


def test_bytes_likes_are_accepted() -> None:
    seed = os.urandom(32)
    message = os.urandom(100)
    signature = ed25519_sign(bytearray(seed), memoryview(message))
    assert signature == ed25519_sign(np.frombuffer(seed, dtype=np.uint8), message)
    public = ed25519_public_key(memoryview(seed))
    assert ed25519_verify(bytearray(public), np.frombuffer(message, np.uint8), memoryview(signature))


# --- verify_many ----------------------------------------------------------------------------


def _signed_batch(n: int, rng: random.Random) -> tuple[list[bytes], list[bytes], list[bytes]]:
    seeds = [rng.randbytes(32) for _ in range(8)]
    publics = [ed25519_public_key(s) for s in seeds]
    keys, messages, signatures = [], [], []
    for _ in range(n):
        k = rng.randrange(8)
        message = rng.randbytes(rng.randrange(300))
        keys.append(publics[k])
        messages.append(message)
        signatures.append(ed25519_sign(seeds[k], message))
    return keys, messages, signatures


@pytest.mark.parametrize("n", [0, 1, 7, 100, 1000])
def test_verify_many_with_bad_items_at_random_positions_equals_a_loop(n: int) -> None:
    rng = random.Random(n)
    keys, messages, signatures = _signed_batch(n, rng)
    for i in rng.sample(range(n), min(n, 5)):
        kind = rng.randrange(4)
        if kind == 0:
            signatures[i] = signatures[i][:10] + bytes([signatures[i][10] ^ 4]) + signatures[i][11:]
        elif kind == 1:
            messages[i] = messages[i] + b"x"
        elif kind == 2:
            keys[i] = keys[(i + 1) % n] if keys[(i + 1) % n] != keys[i] else bytes(32)
        else:
            signatures[i] = signatures[i][:63]  # wrong length: False, as in the loop
    expected = [ed25519_verify(k, m, s) for k, m, s in zip(keys, messages, signatures, strict=True)]
    assert ed25519_verify_many(keys, messages, signatures) == expected
    assert expected.count(False) == min(n, 5)


def test_verify_many_takes_arrays_and_equal_length_messages() -> None:
    rng = random.Random(7)
    seed = rng.randbytes(32)
    messages = [rng.randbytes(48) for _ in range(50)]
    signatures = [ed25519_sign(seed, m) for m in messages]
    keys = np.frombuffer(ed25519_public_key(seed) * 50, dtype=np.uint8).reshape(50, 32)
    sig_array = np.frombuffer(b"".join(signatures), dtype=np.uint8).reshape(50, 64)
    msg_array = np.frombuffer(b"".join(messages), dtype=np.uint8).reshape(50, 48)
    assert ed25519_verify_many(keys, msg_array, sig_array) == [True] * 50
    assert ed25519_verify_many(list(keys), [bytearray(m) for m in messages], signatures) == [True] * 50


# --- hostile arguments ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), bytes(64)])
def test_seed_of_wrong_length_is_a_value_error(seed: bytes) -> None:
    with pytest.raises(ValueError, match="seed must be 32 bytes"):
        ed25519_public_key(seed)
    with pytest.raises(ValueError, match="seed must be 32 bytes"):
        ed25519_sign(seed, b"m")


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33)])
def test_public_key_of_wrong_length_is_a_value_error(key: bytes) -> None:
    with pytest.raises(ValueError, match="public_key must be 32 bytes"):
        ed25519_verify(key, b"m", bytes(64))
    with pytest.raises(ValueError, match="32 bytes"):
        Ed25519PublicKey.from_public_bytes(key)  # as cryptography does


@pytest.mark.parametrize("size", [0, 1, 63, 65, 128])
def test_signature_of_wrong_length_is_false(size: int) -> None:
    seed = bytes(32)
    public = ed25519_public_key(seed)
    signature = ed25519_sign(seed, b"m")
    candidate = (signature * 3)[:size]
    assert ed25519_verify(public, b"m", candidate) is False
    assert not _reference_verify(public, b"m", candidate)


@pytest.mark.parametrize("bad", ["text", 12, None, 1.5, [1, 2]])
def test_non_bytes_arguments_are_type_errors(bad: object) -> None:
    good_seed, good_key, good_sig = bytes(32), ed25519_public_key(bytes(32)), bytes(64)
    with pytest.raises(TypeError, match="seed"):
        ed25519_sign(bad, b"m")
    with pytest.raises(TypeError, match="message"):
        ed25519_sign(good_seed, bad)
    with pytest.raises(TypeError, match="public_key"):
        ed25519_verify(bad, b"m", good_sig)
    with pytest.raises(TypeError, match="message"):
        ed25519_verify(good_key, bad, good_sig)
    with pytest.raises(TypeError, match="signature"):
        ed25519_verify(good_key, b"m", bad)


class _LyingBytes(bytes):
    def __len__(self) -> int:
        return 32


def test_verify_many_sizes_come_from_the_buffers_not_len() -> None:
    key = ed25519_public_key(bytes(32))
    sig = ed25519_sign(bytes(32), b"m")
    with pytest.raises(ValueError, match=r"public_keys\[0\] must be 32 bytes, got 31"):
        ed25519_verify_many([_LyingBytes(key[:31])], [b"m"], [sig])
    with pytest.raises(ValueError, match="public_key must be 32 bytes, got 31"):
        ed25519_verify(_LyingBytes(key[:31]), b"m", sig)
    assert ed25519_verify_many([key], [b"m"], [_LyingBytes(sig[:40])]) == [False]


def test_verify_many_hostile_arguments() -> None:
    key = ed25519_public_key(bytes(32))
    sig = ed25519_sign(bytes(32), b"m")
    with pytest.raises(ValueError, match="same length"):
        ed25519_verify_many([key, key], [b"m"], [sig])
    with pytest.raises(ValueError, match=r"public_keys\[1\] must be 32 bytes"):
        ed25519_verify_many([key, key[:5]], [b"m", b"m"], [sig, sig])
    with pytest.raises(TypeError, match="public_keys"):
        ed25519_verify_many(key, [b"m"], [sig])
    with pytest.raises(TypeError, match=r"signatures\[0\]"):
        ed25519_verify_many([key], [b"m"], ["text"])
    with pytest.raises(TypeError, match="signatures"):
        ed25519_verify_many([key], [b"m"], 5)
    with pytest.raises(TypeError, match="messages"):
        ed25519_verify_many([key], "m", [sig])
    with pytest.raises(ValueError, match="public_keys: an array"):
        ed25519_verify_many(np.zeros((1, 31), np.uint8), [b"m"], [sig])
    assert ed25519_verify_many([key], [b"m"], [sig]) == [True]
    assert ed25519_verify_many((k for k in [key]), iter([b"m"]), iter([sig])) == [True]

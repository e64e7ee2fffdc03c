"""nexpo.crypto.Ed25519SigningKey: the key object signs exactly as ed25519_sign and `cryptography`
do, takes any bytes-like message, refuses bad seeds, is never copied and wipes what it derived."""

from __future__ import annotations

import copy
import pickle
import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from nexpo._native import ffi
from nexpo.crypto import Ed25519SigningKey, ed25519_public_key, ed25519_sign, ed25519_verify

SIZES = [0, 1, 63, 64, 65, 111, 112, 128, 1000, 65537]


@pytest.mark.parametrize("size", SIZES)
def test_signatures_equal_the_function_and_cryptography(size: int) -> None:
    rng = random.Random(size)
    for _ in range(3):
        seed, message = rng.randbytes(32), rng.randbytes(size)
        key = Ed25519SigningKey(seed)
        reference = Ed25519PrivateKey.from_private_bytes(seed)
        assert key.public_key == ed25519_public_key(seed) == reference.public_key().public_bytes_raw()
        signature = key.sign(message)
        assert signature == ed25519_sign(seed, message) == reference.sign(message)
        assert ed25519_verify(key.public_key, message, signature)


def test_one_key_signs_many_messages() -> None:
    seed = bytes(range(32))
    key = Ed25519SigningKey(seed)
    for i in range(50):
        message = i.to_bytes(4, "little") * i
        assert key.sign(message) == ed25519_sign(seed, message)


def test_bytes_likes_are_accepted() -> None:
    seed = bytes(range(1, 33))
    message = b"bytes-like " * 9
    want = ed25519_sign(seed, message)
    for seed_like in (seed, bytearray(seed), memoryview(seed)):
        key = Ed25519SigningKey(seed_like)
        for message_like in (message, bytearray(message), memoryview(message)):
            assert key.sign(message_like) == want


@pytest.mark.parametrize("seed", [b"", b"\x00" * 31, b"\x00" * 33, b"\x00" * 64])
def test_seed_of_wrong_length_is_a_value_error(seed: bytes) -> None:
    with pytest.raises(ValueError, match="seed must be 32 bytes"):
        Ed25519SigningKey(seed)


@pytest.mark.parametrize("bad", ["a str", 7, None, [1, 2]])
def test_non_bytes_arguments_are_type_errors(bad: object) -> None:
    with pytest.raises(TypeError, match="seed"):
        Ed25519SigningKey(bad)
    with pytest.raises(TypeError, match="message"):
        Ed25519SigningKey(bytes(32)).sign(bad)


def test_the_public_key_is_read_only_and_repr_shows_only_it() -> None:
    key = Ed25519SigningKey(bytes(32))
    with pytest.raises(AttributeError):
        key.public_key = b"x" * 32  # type: ignore[misc]
    assert repr(key) == f"<Ed25519SigningKey public_key={key.public_key.hex()}>"


def test_the_key_is_never_copied_or_pickled() -> None:
    key = Ed25519SigningKey(bytes(32))
    for clone in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="cannot be pickled or copied"):
            clone(key)


def test_the_derived_key_is_wiped_when_the_object_is_freed() -> None:
    key = Ed25519SigningKey(bytes(range(32)))
    native = key._key  # kept alive here to look at it after the object is gone
    assert bytes(ffi.buffer(native)) != bytes(96)
    del key
    assert bytes(ffi.buffer(native)) == bytes(96)

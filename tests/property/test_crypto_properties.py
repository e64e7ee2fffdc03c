"""Hypothesis properties of nexpo.crypto against hashlib, hmac and cryptography.

Hypothesis picks the inputs (its own seed, printed on failure); chunkings derive from the
seeded ``rng`` fixture so a failure replays with NEXPO_SEED.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nexpo
from nexpo import crypto

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
data_st = st.binary(min_size=0, max_size=10_000)
small_st = st.binary(min_size=0, max_size=300)


@SETTINGS
@given(data=data_st)
def test_sha256_equals_hashlib(data: bytes) -> None:
    assert crypto.sha256(data) == hashlib.sha256(data).digest()


@SETTINGS
@given(data=data_st, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_chunked_updates_equal_one_shot(data: bytes, cuts: list[int]) -> None:
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    h = crypto.Sha256()
    for lo, hi in itertools.pairwise(points):
        h.update(data[lo:hi])
    assert h.digest() == hashlib.sha256(data).digest()
    fork = h.copy().update(b"tail")
    assert fork.digest() == hashlib.sha256(data + b"tail").digest()
    assert h.digest() == hashlib.sha256(data).digest()


@SETTINGS
@given(data=data_st, cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_sha512_one_shot_and_chunked_equal_hashlib(data: bytes, cuts: list[int]) -> None:
    expected = hashlib.sha512(data).digest()
    assert crypto.sha512(data) == expected
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    h = crypto.Sha512()
    for lo, hi in itertools.pairwise(points):
        h.update(data[lo:hi])
    assert h.digest() == expected
    assert h.copy().update(b"tail").digest() == hashlib.sha512(data + b"tail").digest()


@SETTINGS
@given(msgs=st.lists(small_st, max_size=40))
def test_sha256_many_equals_map(msgs: list[bytes]) -> None:
    assert crypto.sha256_many(msgs) == [hashlib.sha256(m).digest() for m in msgs]


@SETTINGS
@given(key=st.binary(max_size=200), msgs=st.lists(small_st, max_size=30))
def test_hmac_equals_stdlib(key: bytes, msgs: list[bytes]) -> None:
    expected = [hmac.new(key, m, hashlib.sha256).digest() for m in msgs]
    assert crypto.hmac_sha256_many(key, msgs) == expected
    for m, tag in zip(msgs, expected, strict=True):
        assert crypto.hmac_sha256(key, m) == tag
        assert crypto.hmac_sha256_verify(key, m, tag)


@SETTINGS
@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=12, max_size=12),
    plaintext=data_st,
    aad=st.binary(max_size=200),
)
def test_aead_equals_cryptography_and_round_trips(
    key: bytes, nonce: bytes, plaintext: bytes, aad: bytes
) -> None:
    sealed = crypto.chacha20poly1305_encrypt(key, nonce, plaintext, aad)
    assert sealed == ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)
    assert crypto.chacha20poly1305_decrypt(key, nonce, sealed, aad) == plaintext


@SETTINGS
@given(
    plaintext=st.binary(max_size=2000),
    aad=st.binary(max_size=64),
    position=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_flipped_bit_fails_authentication(plaintext: bytes, aad: bytes, position: int, bit: int) -> None:
    key, nonce = bytes(range(32)), bytes(range(12))
    sealed = bytearray(crypto.chacha20poly1305_encrypt(key, nonce, plaintext, aad))
    sealed[position % len(sealed)] ^= 1 << bit
    with pytest.raises(nexpo.AuthenticationError):
        crypto.chacha20poly1305_decrypt(key, nonce, bytes(sealed), aad)


@SETTINGS
@given(leaves=st.lists(st.binary(max_size=50), min_size=1, max_size=70), pick=st.integers(min_value=0))
def test_merkle_proof_round_trip(leaves: list[bytes], pick: int) -> None:
    root = crypto.merkle_root(leaves)
    i = pick % len(leaves)
    proof = crypto.merkle_proof(leaves, i)
    assert crypto.merkle_verify(leaves[i], i, len(leaves), proof, root)
    assert len(proof) <= max(1, (len(leaves) - 1).bit_length())


def test_random_chunkings_with_seeded_rng(rng: random.Random) -> None:
    for _ in range(25):
        data = rng.randbytes(rng.randrange(0, 10_001))
        h = crypto.Sha256()
        pos = 0
        while pos < len(data):
            step = rng.randrange(1, 2000)
            h.update(memoryview(data)[pos : pos + step])
            pos += step
        assert h.hexdigest() == hashlib.sha256(data).hexdigest()

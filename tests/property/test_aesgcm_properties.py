"""Hypothesis properties of AES-256-GCM and the AEAD key objects against ``cryptography``:
equal output for any key, nonce, plaintext and AAD; decrypt inverts encrypt; any single-bit
change to the sealed message is refused.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305 as RefChaCha
from hypothesis import given, settings
from hypothesis import strategies as st

import nexpo
from nexpo import crypto

SETTINGS = settings(max_examples=80, deadline=None)
key_st = st.binary(min_size=32, max_size=32)
nonce_st = st.binary(min_size=12, max_size=12)
data_st = st.binary(min_size=0, max_size=3000)
aad_st = st.binary(min_size=0, max_size=300)


@SETTINGS
@given(key=key_st, nonce=nonce_st, pt=data_st, aad=aad_st)
def test_aes_equals_cryptography_and_round_trips(key: bytes, nonce: bytes, pt: bytes, aad: bytes) -> None:
    sealed = AESGCM(key).encrypt(nonce, pt, aad)
    assert crypto.aes256gcm_encrypt(key, nonce, pt, aad) == sealed
    obj = crypto.AesGcm(key)
    assert obj.encrypt(nonce, pt, aad) == sealed
    assert obj.decrypt(nonce, sealed, aad) == pt


@SETTINGS
@given(key=key_st, nonce=nonce_st, pt=data_st, aad=aad_st)
def test_chacha_key_object_equals_cryptography(key: bytes, nonce: bytes, pt: bytes, aad: bytes) -> None:
    sealed = RefChaCha(key).encrypt(nonce, pt, aad)
    obj = crypto.ChaCha20Poly1305(key)
    assert obj.encrypt(nonce, pt, aad) == sealed
    assert obj.decrypt(nonce, sealed, aad) == pt


@SETTINGS
@given(
    key=key_st,
    nonce=nonce_st,
    pt=st.binary(max_size=500),
    aad=aad_st,
    flip=st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=7)),
)
def test_any_flipped_bit_is_refused(
    key: bytes, nonce: bytes, pt: bytes, aad: bytes, flip: tuple[int, int]
) -> None:
    where, bit = flip
    for cls in (crypto.AesGcm, crypto.ChaCha20Poly1305):
        obj = cls(key)
        sealed = bytearray(obj.encrypt(nonce, pt, aad))
        sealed[where % len(sealed)] ^= 1 << bit
        with pytest.raises(nexpo.AuthenticationError):
            obj.decrypt(nonce, bytes(sealed), aad)

"""Hypothesis properties of nexpo.crypto's Ed25519: sign → verify, equal to `cryptography` for
any seed and message, any change to the message or signature fails, and verify_many equals a
loop over verify."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from nexpo.crypto import ed25519_public_key, ed25519_sign, ed25519_verify, ed25519_verify_many

SETTINGS = settings(max_examples=60, deadline=None)
seeds = st.binary(min_size=32, max_size=32)
messages = st.binary(min_size=0, max_size=2000)


def _reference_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


@SETTINGS
@given(seed=seeds, message=messages)
def test_sign_then_verify_equals_cryptography(seed: bytes, message: bytes) -> None:
    public = ed25519_public_key(seed)
    signature = ed25519_sign(seed, message)
    reference = Ed25519PrivateKey.from_private_bytes(seed)
    assert public == reference.public_key().public_bytes_raw()
    assert signature == reference.sign(message)
    assert ed25519_verify(public, message, signature)


@SETTINGS
@given(seed=seeds, message=messages, position=st.integers(0, 63), flip=st.integers(1, 255))
def test_a_changed_signature_fails_as_in_cryptography(
    seed: bytes, message: bytes, position: int, flip: int
) -> None:
    public = ed25519_public_key(seed)
    bad = bytearray(ed25519_sign(seed, message))
    bad[position] ^= flip
    assert ed25519_verify(public, message, bytes(bad)) is False
    assert not _reference_verify(public, message, bytes(bad))


@SETTINGS
@given(seed=seeds, message=messages, other=messages)
def test_another_message_fails(seed: bytes, message: bytes, other: bytes) -> None:
    public = ed25519_public_key(seed)
    signature = ed25519_sign(seed, message)
    assert ed25519_verify(public, other, signature) is (other == message)


@SETTINGS
@given(
    items=st.lists(
        st.tuples(seeds, st.binary(max_size=200), st.booleans(), st.binary(min_size=64, max_size=64)),
        max_size=20,
    )
)
def test_verify_many_equals_a_loop(items: list[tuple[bytes, bytes, bool, bytes]]) -> None:
    keys, msgs, sigs = [], [], []
    for seed, message, genuine, junk in items:
        keys.append(ed25519_public_key(seed))
        msgs.append(message)
        sigs.append(ed25519_sign(seed, message) if genuine else junk)
    expected = [ed25519_verify(k, m, s) for k, m, s in zip(keys, msgs, sigs, strict=True)]
    assert ed25519_verify_many(keys, msgs, sigs) == expected
    assert expected == [_reference_verify(k, m, s) for k, m, s in zip(keys, msgs, sigs, strict=True)]

"""Fuzz cases for nexpo.crypto's Ed25519 functions (a family of cases.py): hostile seeds, keys,
messages and signatures, with cryptography's answer as the reference."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hostile import bytes_like, payload

from nexpo import crypto

if TYPE_CHECKING:
    from cases import Case


def _peer_verify(key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def ed25519_case(rng: random.Random) -> Case:
    from cases import Case, _expect  # cases.py imports this module for its family list

    seed_bytes = rng.randbytes(32 if rng.random() < 0.85 else rng.choice([0, 31, 33, 64]))
    seed = bytes_like(rng, seed_bytes)
    if seed.real is not None and len(seed.real) != 32:
        seed.real = None
    msg = bytes_like(rng, payload(rng))
    if rng.random() < 0.5:
        exp, lax = _expect([seed, msg], lambda: Ed25519PrivateKey.from_private_bytes(
            bytes(seed.real)).sign(bytes(msg.real)))
        if rng.random() < 0.5:  # the key object signs the same
            return Case("Ed25519SigningKey.sign",
                        lambda: crypto.Ed25519SigningKey(seed.value).sign(msg.value),
                        exp, lax=lax, labels=[seed.label, msg.label])
        return Case("ed25519_sign", lambda: crypto.ed25519_sign(seed.value, msg.value),
                    exp, lax=lax, labels=[seed.label, msg.label])
    good_seed = bytes(seed.real) if seed.real is not None else bytes(32)
    plain = bytes(msg.real) if msg.real is not None else b""
    signer = Ed25519PrivateKey.from_private_bytes(good_seed)
    sig_bytes = signer.sign(plain)
    if rng.random() < 0.3:
        pos = rng.randrange(64)
        sig_bytes = sig_bytes[:pos] + bytes([sig_bytes[pos] ^ (1 << rng.randrange(8))]) + sig_bytes[pos + 1:]
    if rng.random() < 0.1:
        sig_bytes = sig_bytes[: rng.randrange(64)]
    key_bytes = signer.public_key().public_bytes_raw()
    if rng.random() < 0.1:
        key_bytes = key_bytes[: rng.randrange(32)]
    key = bytes_like(rng, key_bytes, junk=0.05)
    if key.real is not None and len(key.real) != 32:
        key.real = None
    sig = bytes_like(rng, sig_bytes, junk=0.05)
    args = [key, msg, sig]
    exp, lax = _expect(args, lambda: _peer_verify(bytes(key.real), bytes(msg.real), bytes(sig.real)))
    return Case("ed25519_verify", lambda: crypto.ed25519_verify(key.value, msg.value, sig.value),
                exp, lax=lax, labels=[a.label for a in args])

"""ChaCha20-Poly1305 at the lengths where a kernel changes path, against ``cryptography``:
Poly1305's vector paths start at 32 blocks (512 B) and the IFMA one pairs 8-block groups (odd
and even counts of groups, a scalar tail or none); ChaCha20's AVX-512 path takes whole 1 KiB
chunks and the rest block by block. The AAD goes through the same MAC paths, so it varies too."""

from __future__ import annotations

import random

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from nexpo import crypto

BASES = (256, 384, 512, 640, 1024, 1152, 2048, 4096, 16384)
DELTAS = (-129, -17, -16, -1, 0, 1, 16, 127, 128, 129)


def test_lengths_around_path_boundaries_match_cryptography(isa: str, rng: random.Random) -> None:
    key, nonce = rng.randbytes(32), rng.randbytes(12)
    peer, ours = ChaCha20Poly1305(key), crypto.ChaCha20Poly1305(key)
    for n in sorted({base + delta for base in BASES for delta in DELTAS}):
        pt = rng.randbytes(n)
        aad = rng.randbytes(rng.choice([0, 13, 16, 600, n]))
        expected = peer.encrypt(nonce, pt, aad)
        assert crypto.chacha20poly1305_encrypt(key, nonce, pt, aad) == expected, (isa, n, len(aad))
        assert ours.encrypt(nonce, pt, aad) == expected, (isa, n, len(aad))
        assert ours.decrypt(nonce, expected, aad) == pt


def test_all_ones_aad_keeps_limbs_in_range(isa: str) -> None:
    """0xff bytes put every Poly1305 limb at its maximum (the vector paths' overflow margins);
    the MAC reads the AAD as it is (the ciphertext is the plaintext xor keystream)."""
    key, nonce = bytes(range(32)), bytes(12)
    peer = ChaCha20Poly1305(key)
    for n in (512, 640, 1152, 4096 + 48, 65536):
        aad = b"\xff" * n
        expected = peer.encrypt(nonce, b"x" * 100, aad)
        assert crypto.chacha20poly1305_encrypt(key, nonce, b"x" * 100, aad) == expected, (isa, n)

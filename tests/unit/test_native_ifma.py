"""The IFMA switch (``_native.set_ifma``, ``NEXPO_IFMA``): AVX512-IFMA can be switched off on an
IFMA CPU, which gives the AVX-512 CPU without it (Skylake-SP, Cascade Lake) and its plain
AVX-512 Poly1305 path; both paths must seal exactly as ``cryptography`` does."""

from __future__ import annotations

import json
import os

import pytest
from _info_cli import info_with
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305 as Reference

import nexpo
from nexpo import _native, crypto

# Around Poly1305's vector thresholds (16 blocks for IFMA, 8-block groups) and ChaCha's chunks.
LENGTHS = (0, 1, 15, 16, 127, 128, 129, 255, 256, 257, 511, 512, 1023, 1024, 1025, 4096, 16385)


@pytest.mark.parametrize("ifma", [True, False])
def test_chacha20poly1305_with_ifma_on_and_off_matches_cryptography(ifma: bool) -> None:
    previous = _native.ifma_enabled()
    key, nonce, aad = os.urandom(32), os.urandom(12), os.urandom(33)
    reference = Reference(key)
    try:
        _native.set_ifma(ifma)
        assert nexpo.info()["ifma_active"] == (
            ifma and _native.has_ifma() and _native.isa_active() == "avx512"
        )
        for n in LENGTHS:
            data = os.urandom(n)
            sealed = crypto.ChaCha20Poly1305(key).encrypt(nonce, data, aad)
            assert sealed == reference.encrypt(nonce, data, aad), n
            assert crypto.ChaCha20Poly1305(key).decrypt(nonce, sealed, aad) == data, n
    finally:
        _native.set_ifma(previous)


def test_set_ifma_takes_a_bool() -> None:
    with pytest.raises(TypeError, match="bool"):
        _native.set_ifma(1)  # type: ignore[arg-type]


def test_nexpo_ifma_environment_variable() -> None:
    proc = info_with({"NEXPO_IFMA": "0"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ifma_active"] is False
    bad = info_with({"NEXPO_IFMA": "maybe"})
    assert bad.returncode != 0
    assert "NEXPO_IFMA must be 0 or 1" in bad.stderr

"""AES-256-GCM against published answers, on every variant (``isa``: portable → bitsliced,
avx2 → AES-NI + PCLMULQDQ, avx512 → VAES + VPCLMULQDQ where the CPU has them).

The NIST CAVP subset (tests/vectors/gcm256_96_subset.rsp) holds the first vectors of every
plaintext/AAD length section of gcmEncryptExtIV256 and gcmDecrypt256 with 96-bit IVs and 128-bit
tags, including the decrypt vectors NIST marks FAIL.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import nexpo
from nexpo import _aead, _native, crypto

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
EXPECTED_IMPL = {"portable": "portable", "avx2": "aes-ni", "avx512": "vaes"}


def _cavp_cases() -> list[dict[str, str]]:
    """Every vector of the subset: its fields, plus 'op' (encrypt/decrypt) and 'fail'."""
    cases: list[dict[str, str]] = []
    op = ""
    current: dict[str, str] | None = None
    for raw in (VECTORS / "gcm256_96_subset.rsp").read_text().splitlines():
        line = raw.strip()
        if line.startswith("[encrypt") or line.startswith("[decrypt"):
            op = line[1:8]
        elif line.startswith("Count = "):
            current = {"op": op, "fail": ""}
            cases.append(current)
        elif line == "FAIL" and current is not None:
            current["fail"] = "1"
        elif " = " in line and current is not None:
            key, value = (part.strip() for part in line.split(" = ", 1))
            current[key] = value
        elif line.endswith(" =") and current is not None:
            current[line[:-2].strip()] = ""
    return cases


CAVP = _cavp_cases()


def _fields(case: dict[str, str]) -> tuple[bytes, bytes, bytes, bytes, bytes, bytes]:
    get = lambda name: bytes.fromhex(case.get(name, ""))  # noqa: E731
    return get("Key"), get("IV"), get("PT"), get("AAD"), get("CT"), get("Tag")


def test_the_subset_covers_every_section() -> None:
    assert len(CAVP) == 175
    assert sum(1 for c in CAVP if c["fail"]) == 48
    lengths = {(len(c.get("PT", c.get("CT", ""))) // 2, len(c.get("AAD", "")) // 2) for c in CAVP}
    assert (0, 0) in lengths and (51, 90) in lengths  # empty PT and AAD; 408-bit PT, 720-bit AAD


def test_each_isa_runs_its_variant(isa: str) -> None:
    variants = _aead.aes256gcm_variants()
    want = EXPECTED_IMPL[isa]
    if want == "vaes" and "vaes" not in variants:
        want = "aes-ni"
    if want not in variants:
        want = "portable"
    assert _aead.aes256gcm_impl() == want


def test_every_variant_of_this_cpu_is_reachable() -> None:
    reachable = set()
    previous = _native.isa_active()
    try:
        for name in _native.isa_available():
            _native.set_isa(name)
            reachable.add(_aead.aes256gcm_impl())
    finally:
        _native.set_isa(previous)
    assert reachable == set(_aead.aes256gcm_variants())


def test_cavp_encrypt_vectors(isa: str) -> None:
    for case in (c for c in CAVP if c["op"] == "encrypt"):
        key, iv, pt, aad, ct, tag = _fields(case)
        assert crypto.aes256gcm_encrypt(key, iv, pt, aad) == ct + tag, (isa, case["Count"])
        assert crypto.AesGcm(key).encrypt(iv, pt, aad) == ct + tag
        assert crypto.aes256gcm_decrypt(key, iv, ct + tag, aad) == pt


def test_cavp_decrypt_vectors_including_failures(isa: str) -> None:
    for case in (c for c in CAVP if c["op"] == "decrypt"):
        key, iv, pt, aad, ct, tag = _fields(case)
        if case["fail"]:
            with pytest.raises(nexpo.AuthenticationError):
                crypto.aes256gcm_decrypt(key, iv, ct + tag, aad)
            with pytest.raises(nexpo.AuthenticationError):
                crypto.AesGcm(key).decrypt(iv, ct + tag, aad)
        else:
            assert crypto.aes256gcm_decrypt(key, iv, ct + tag, aad) == pt, (isa, case["Count"])
            assert crypto.AesGcm(key).decrypt(iv, ct + tag, aad) == pt


# The AES-256 cases of the GCM specification (McGrew & Viega, test cases 13-16).
SPEC_KEY = bytes.fromhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
SPEC_IV = bytes.fromhex("cafebabefacedbaddecaf888")
SPEC_PT = bytes.fromhex(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
SPEC_AAD = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
SPEC_CT = bytes.fromhex(
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
    "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad"
)


SPEC_CASES = {
    "case13-empty": (bytes(32), bytes(12), b"", b"", "530f8afbc74536b9a963b4f1c4cb738b"),
    "case14-zero-block": (
        bytes(32),
        bytes(12),
        bytes(16),
        b"",
        "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
    ),
    "case15": (SPEC_KEY, SPEC_IV, SPEC_PT, b"", SPEC_CT.hex() + "b094dac5d93471bdec1a502270e3cc6c"),
    "case16-aad": (
        SPEC_KEY,
        SPEC_IV,
        SPEC_PT[:60],
        SPEC_AAD,
        SPEC_CT[:60].hex() + "76fc6ece0f4e1768cddf8853bb2d551b",
    ),
}


@pytest.mark.parametrize("name", sorted(SPEC_CASES))
def test_gcm_specification_cases(isa: str, name: str) -> None:
    key, iv, pt, aad, sealed_hex = SPEC_CASES[name]
    sealed = bytes.fromhex(sealed_hex)
    assert crypto.aes256gcm_encrypt(key, iv, pt, aad) == sealed
    assert crypto.AesGcm(key).decrypt(iv, sealed, aad) == pt

"""nexpo.crypto: official vectors, differential checks against hashlib / hmac / cryptography,
tamper cases, Merkle audit paths and bad arguments. ISA-dependent tests take the ``isa``
fixture so each runs once per path this CPU has (portable, avx2, avx512, and avx512-nosha:
AVX-512 with SHA-NI switched off, as on Skylake-SP; SHA-NI is off on portable)."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

import nexpo
from nexpo import crypto

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def _rsp_cases(name: str) -> list[tuple[int, bytes, bytes]]:
    """(bit length, message, digest) triples of a NIST CAVP SHAVS .rsp file."""
    cases: list[tuple[int, bytes, bytes]] = []
    fields: dict[str, str] = {}
    for line in (VECTORS / name).read_text().splitlines():
        if " = " not in line:
            continue
        key, value = (part.strip() for part in line.split(" = ", 1))
        fields[key] = value
        if key == "MD":
            bits = int(fields["Len"])
            msg = bytes.fromhex(fields["Msg"])[: bits // 8]
            cases.append((bits, msg, bytes.fromhex(value)))
    return cases


def _hmac_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / "rfc4231_hmac_sha256.json").read_text())["cases"]
    return cases


def _aead_cases() -> list[dict[str, str]]:
    cases: list[dict[str, str]] = json.loads((VECTORS / "rfc8439_aead.json").read_text())["aead"]
    return cases


def _random_bytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def _chunks(rng: random.Random, data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        step = rng.choice([1, 3, 63, 64, 65, 127, 500, rng.randrange(1, 3000)])
        out.append(data[pos : pos + step])
        pos += step
    return out


# --- SHA-256: official vectors --------------------------------------------------------------


@pytest.fixture
def isa(sha_path: str) -> str:
    """Here every path test also runs on AVX-512 with SHA-NI off (conftest ``sha_path``)."""
    return sha_path


SHORT = _rsp_cases("SHA256ShortMsg.rsp")
LONG = _rsp_cases("SHA256LongMsg.rsp")


def test_nist_vector_files_are_complete() -> None:
    assert len(SHORT) == 65
    assert len(LONG) == 64


def test_sha256_nist_short_and_long_messages(isa: str) -> None:
    for bits, msg, md in SHORT + LONG:
        assert crypto.sha256(msg) == md, f"Len = {bits} on {isa}"


def test_sha256_many_nist_messages(isa: str) -> None:
    msgs = [msg for _, msg, _ in SHORT + LONG]
    assert crypto.sha256_many(msgs) == [md for _, _, md in SHORT + LONG]


def test_sha256_million_a(isa: str) -> None:
    expected = bytes.fromhex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    assert crypto.sha256(b"a" * 1_000_000) == expected
    h = crypto.Sha256()
    for _ in range(1000):
        h.update(b"a" * 1000)
    assert h.digest() == expected


def test_sha256_fips_examples() -> None:
    assert crypto.sha256(b"abc").hex() == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert crypto.sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").hex() == (
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    )


# --- SHA-256: differential ------------------------------------------------------------------


def test_sha256_matches_hashlib_random_lengths(isa: str, rng: random.Random) -> None:
    for _ in range(60):
        data = _random_bytes(rng, rng.randrange(0, 10_001))
        assert crypto.sha256(data) == hashlib.sha256(data).digest(), (isa, len(data))


def test_sha256_block_boundaries(isa: str) -> None:
    for n in (0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129, 191, 192, 193):
        data = bytes(range(256)) * 2
        assert crypto.sha256(data[:n]) == hashlib.sha256(data[:n]).digest(), n


def test_streaming_chunked_equals_one_shot(isa: str, rng: random.Random) -> None:
    for _ in range(30):
        data = _random_bytes(rng, rng.randrange(0, 10_001))
        h = crypto.Sha256()
        for chunk in _chunks(rng, data):
            assert h.update(chunk) is h
        assert h.digest() == hashlib.sha256(data).digest()
        assert h.hexdigest() == hashlib.sha256(data).hexdigest()


def test_streaming_hashlib_shape() -> None:
    h = crypto.Sha256()
    assert (h.name, h.digest_size, h.block_size) == ("sha256", 32, 64)
    assert h.digest() == hashlib.sha256().digest()
    assert crypto.Sha256(b"abc").digest() == hashlib.sha256(b"abc").digest()


def test_streaming_copy_is_independent(rng: random.Random) -> None:
    a = crypto.Sha256().update(b"prefix-")
    b = a.copy()
    a.update(b"one")
    b.update(b"two")
    assert a.digest() == hashlib.sha256(b"prefix-one").digest()
    assert b.digest() == hashlib.sha256(b"prefix-two").digest()
    # digest() does not finalise: the object keeps absorbing
    a.update(b"more")
    assert a.digest() == hashlib.sha256(b"prefix-onemore").digest()


def test_streaming_object_shared_between_threads() -> None:
    import threading

    h = crypto.Sha256()
    chunk = bytes(range(256)) * 4

    def feed() -> None:
        for _ in range(200):
            h.update(chunk)

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert h.digest() == hashlib.sha256(chunk * 800).digest()


def test_streaming_accepts_every_bytes_like() -> None:
    data = bytes(range(100))
    for obj in (data, bytearray(data), memoryview(data), np.frombuffer(data, dtype=np.uint8)):
        assert crypto.Sha256().update(obj).digest() == hashlib.sha256(data).digest()
        assert crypto.sha256(obj) == hashlib.sha256(data).digest()


# --- sha256_many ----------------------------------------------------------------------------


def test_sha256_many_mixed_lengths(isa: str, rng: random.Random) -> None:
    sizes = [rng.choice([0, 1, 31, 64, 65, rng.randrange(0, 3000)]) for _ in range(500)]
    msgs = [_random_bytes(rng, n) for n in sizes]
    assert crypto.sha256_many(msgs) == [hashlib.sha256(m).digest() for m in msgs]


def test_sha256_many_equal_lengths(isa: str, rng: random.Random) -> None:
    for size in (0, 1, 32, 55, 56, 64, 100, 1000):
        msgs = [_random_bytes(rng, size) for _ in range(rng.randrange(1, 40))]
        assert crypto.sha256_many(msgs) == [hashlib.sha256(m).digest() for m in msgs]


def test_sha256_many_array_rows(isa: str, rng: random.Random) -> None:
    rows = np.frombuffer(_random_bytes(rng, 37 * 64), dtype=np.uint8).reshape(37, 64)
    out = crypto.sha256_many(rows)
    assert isinstance(out, np.ndarray)
    assert out.shape == (37, 32)
    assert out.dtype == np.uint8
    for row, digest in zip(rows, out, strict=True):
        assert digest.tobytes() == hashlib.sha256(row.tobytes()).digest()
    # a non-contiguous view is hashed row by row all the same
    strided = np.frombuffer(_random_bytes(rng, 10 * 128), dtype=np.uint8).reshape(10, 128)[:, ::2]
    assert [d.tobytes() for d in crypto.sha256_many(strided)] == [
        hashlib.sha256(r.tobytes()).digest() for r in strided
    ]
    empty = crypto.sha256_many(np.zeros((0, 16), dtype=np.uint8))
    assert empty.shape == (0, 32)


def test_sha256_many_accepts_mixed_bytes_likes() -> None:
    import array

    words = array.array("I", [1, 2, 3])
    msgs: list[Any] = [b"ab", bytearray(b"cd"), memoryview(b"ef"), words, np.arange(5, dtype=np.uint16)]
    expected = [hashlib.sha256(bytes(memoryview(m).cast("B"))).digest() for m in msgs]
    assert crypto.sha256_many(msgs) == expected
    xy = [hashlib.sha256(b"x").digest(), hashlib.sha256(b"y").digest()]
    assert crypto.sha256_many(iter([b"x", b"y"])) == xy
    assert crypto.sha256_many([]) == []
    assert crypto.sha256_many((b"",)) == [hashlib.sha256(b"").digest()]


# --- HMAC ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", _hmac_cases(), ids=lambda c: f"rfc4231-{c['case']}")
def test_hmac_rfc4231(case: dict[str, Any], isa: str) -> None:
    key = b"\xaa" * 131 if case["key"] == "aa*131" else bytes.fromhex(case["key"])
    data = case["data_text"].encode() if "data_text" in case else bytes.fromhex(case["data"])
    expected = bytes.fromhex(case["mac"])
    mac = crypto.hmac_sha256(key, data)
    assert mac[: len(expected)] == expected
    assert crypto.hmac_sha256_many(key, [data, data])[1][: len(expected)] == expected
    assert crypto.hmac_sha256_verify(key, data, mac)


def test_hmac_matches_stdlib(isa: str, rng: random.Random) -> None:
    for _ in range(40):
        key = _random_bytes(rng, rng.choice([0, 1, 32, 63, 64, 65, 200]))
        data = _random_bytes(rng, rng.randrange(0, 10_001))
        assert crypto.hmac_sha256(key, data) == hmac.new(key, data, hashlib.sha256).digest()


def test_hmac_many_matches_stdlib(isa: str, rng: random.Random) -> None:
    key = _random_bytes(rng, rng.randrange(0, 100))
    msgs = [_random_bytes(rng, rng.choice([0, 64, 64, rng.randrange(0, 500)])) for _ in range(300)]
    assert crypto.hmac_sha256_many(key, msgs) == [hmac.new(key, m, hashlib.sha256).digest() for m in msgs]
    rows = np.frombuffer(_random_bytes(rng, 16 * 64), dtype=np.uint8).reshape(16, 64)
    out = crypto.hmac_sha256_many(key, rows)
    assert [d.tobytes() for d in out] == [hmac.new(key, r.tobytes(), hashlib.sha256).digest() for r in rows]


def test_hmac_verify_rejects_any_altered_bit(rng: random.Random) -> None:
    key, data = _random_bytes(rng, 32), _random_bytes(rng, 100)
    tag = crypto.hmac_sha256(key, data)
    assert crypto.hmac_sha256_verify(key, data, tag)
    for i in range(32):
        bad = bytearray(tag)
        bad[i] ^= 1 << rng.randrange(8)
        assert not crypto.hmac_sha256_verify(key, data, bytes(bad))
    assert not crypto.hmac_sha256_verify(key, data, tag[:31])
    assert not crypto.hmac_sha256_verify(key, data, tag + b"\0")
    assert not crypto.hmac_sha256_verify(key, data, b"")
    assert not crypto.hmac_sha256_verify(key + b"x", data, tag)
    assert not crypto.hmac_sha256_verify(key, data + b"x", tag)


# --- Merkle (RFC 9162) -----------------------------------------------------------------------


def _ref_mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash, written straight from the definition."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256().digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((n - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _ref_mth(leaves[:k]) + _ref_mth(leaves[k:])).digest()


def _ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(m, D[n])."""
    n = len(leaves)
    if n <= 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return [*_ref_path(m, leaves[:k]), _ref_mth(leaves[k:])]
    return [*_ref_path(m - k, leaves[k:]), _ref_mth(leaves[:k])]


def test_merkle_root_matches_rfc9162_definition(isa: str, rng: random.Random) -> None:
    for n in [*range(0, 20), 31, 32, 33, 64, 65, 100, 257]:
        leaves = [_random_bytes(rng, rng.randrange(0, 80)) for _ in range(n)]
        assert crypto.merkle_root(leaves) == _ref_mth(leaves), n
    rows = np.frombuffer(_random_bytes(rng, 9 * 32), dtype=np.uint8).reshape(9, 32)
    assert crypto.merkle_root(rows) == _ref_mth([r.tobytes() for r in rows])


def test_merkle_empty_tree_is_hash_of_nothing() -> None:
    assert crypto.merkle_root([]) == hashlib.sha256(b"").digest()


def test_merkle_proofs_every_index_sizes_1_to_70(isa: str, rng: random.Random) -> None:
    for n in range(1, 71):
        leaves = [_random_bytes(rng, rng.randrange(0, 40)) for _ in range(n)]
        root = crypto.merkle_root(leaves)
        for i in range(n):
            proof = crypto.merkle_proof(leaves, i)
            assert proof == _ref_path(i, leaves), (n, i)
            assert crypto.merkle_verify(leaves[i], i, n, proof, root), (n, i)


def test_merkle_verify_fails_for_any_altered_proof_element(rng: random.Random) -> None:
    for n in range(2, 71):
        leaves = [_random_bytes(rng, 16) for _ in range(n)]
        root = crypto.merkle_root(leaves)
        i = rng.randrange(n)
        proof = crypto.merkle_proof(leaves, i)
        for j in range(len(proof)):
            bad = [bytearray(p) for p in proof]
            bad[j][rng.randrange(32)] ^= 1 << rng.randrange(8)
            assert not crypto.merkle_verify(leaves[i], i, n, [bytes(b) for b in bad], root), (n, i, j)
        assert not crypto.merkle_verify(leaves[i] + b"x", i, n, proof, root)
        assert not crypto.merkle_verify(leaves[i], i, n, proof[:-1], root)
        assert not crypto.merkle_verify(leaves[i], i, n, [*proof, root], root)
        other = (i + 1) % n
        assert not crypto.merkle_verify(leaves[i], other, n, proof, root) or leaves[i] == leaves[other]
        assert not crypto.merkle_verify(leaves[i], i, n, proof, bytes(32))
        assert not crypto.merkle_verify(leaves[i], n, n, proof, root)


def test_merkle_single_leaf_tree() -> None:
    root = crypto.merkle_root([b"only"])
    assert root == hashlib.sha256(b"\x00only").digest()
    assert crypto.merkle_proof([b"only"], 0) == []
    assert crypto.merkle_verify(b"only", 0, 1, [], root)


# --- ChaCha20-Poly1305 -----------------------------------------------------------------------


@pytest.mark.parametrize("case", _aead_cases(), ids=lambda c: c["name"])
def test_aead_rfc8439_vectors(case: dict[str, str], isa: str) -> None:
    key, nonce, aad = (bytes.fromhex(case[k]) for k in ("key", "nonce", "aad"))
    plaintext = case["plaintext_text"].encode()
    sealed = bytes.fromhex(case["ciphertext"] + case["tag"])
    assert crypto.chacha20poly1305_encrypt(key, nonce, plaintext, aad) == sealed
    assert crypto.chacha20poly1305_decrypt(key, nonce, sealed, aad) == plaintext


def test_aead_matches_cryptography(isa: str, rng: random.Random) -> None:
    for _ in range(60):
        key, nonce = _random_bytes(rng, 32), _random_bytes(rng, 12)
        size = rng.choice([0, 1, 15, 16, 17, 63, 64, 65, 511, 512, 513, rng.randrange(0, 10_001)])
        pt = _random_bytes(rng, size)
        aad = _random_bytes(rng, rng.choice([0, 1, 16, 17, rng.randrange(0, 300)]))
        expected = ChaCha20Poly1305(key).encrypt(nonce, pt, aad)
        assert crypto.chacha20poly1305_encrypt(key, nonce, pt, aad) == expected, (isa, len(pt), len(aad))
        assert crypto.chacha20poly1305_decrypt(key, nonce, expected, aad) == pt


def test_aead_large_message_crosses_every_wide_path(isa: str, rng: random.Random) -> None:
    key, nonce = _random_bytes(rng, 32), _random_bytes(rng, 12)
    pt = _random_bytes(rng, 3 * 1024 * 1024 + 77)
    expected = ChaCha20Poly1305(key).encrypt(nonce, pt, b"hdr")
    assert crypto.chacha20poly1305_encrypt(key, nonce, pt, b"hdr") == expected


def test_aead_every_tamper_raises_authentication_error(isa: str, rng: random.Random) -> None:
    key, nonce = _random_bytes(rng, 32), _random_bytes(rng, 12)
    pt, aad = _random_bytes(rng, 100), _random_bytes(rng, 20)
    sealed = crypto.chacha20poly1305_encrypt(key, nonce, pt, aad)

    def flip(data: bytes, i: int) -> bytes:
        out = bytearray(data)
        out[i] ^= 1 << rng.randrange(8)
        return bytes(out)

    cases = [
        *(("ciphertext", key, nonce, flip(sealed, i), aad) for i in range(0, 100, 7)),
        *(("tag", key, nonce, flip(sealed, 100 + i), aad) for i in range(16)),
        ("aad", key, nonce, sealed, flip(aad, 3)),
        ("aad missing", key, nonce, sealed, b""),
        ("aad extended", key, nonce, sealed, aad + b"\0"),
        ("nonce", key, flip(nonce, 5), sealed, aad),
        ("key", flip(key, 17), nonce, sealed, aad),
        ("truncated", key, nonce, sealed[:-1], aad),
        ("tag only", key, nonce, sealed[100:], aad),
    ]
    for what, k, n, data, a in cases:
        with pytest.raises(nexpo.AuthenticationError):
            crypto.chacha20poly1305_decrypt(k, n, data, a)
        assert what


def test_aead_empty_plaintext_and_aad() -> None:
    key, nonce = bytes(32), bytes(12)
    sealed = crypto.chacha20poly1305_encrypt(key, nonce, b"")
    assert sealed == ChaCha20Poly1305(key).encrypt(nonce, b"", b"")
    assert len(sealed) == 16
    assert crypto.chacha20poly1305_decrypt(key, nonce, sealed) == b""


def test_aead_wrong_key_or_nonce_length_is_value_error() -> None:
    for key in (b"", bytes(16), bytes(31), bytes(33), bytes(64)):
        with pytest.raises(ValueError, match="key must be 32 bytes"):
            crypto.chacha20poly1305_encrypt(key, bytes(12), b"x")
        with pytest.raises(ValueError, match="key must be 32 bytes"):
            crypto.chacha20poly1305_decrypt(key, bytes(12), bytes(17))
    for nonce in (b"", bytes(8), bytes(11), bytes(13), bytes(24)):
        with pytest.raises(ValueError, match="nonce must be 12 bytes"):
            crypto.chacha20poly1305_encrypt(bytes(32), nonce, b"x")
        with pytest.raises(ValueError, match="nonce must be 12 bytes"):
            crypto.chacha20poly1305_decrypt(bytes(32), nonce, bytes(17))
    with pytest.raises(ValueError, match="16-byte tag"):
        crypto.chacha20poly1305_decrypt(bytes(32), bytes(12), bytes(15))


# --- bad arguments ---------------------------------------------------------------------------


BAD_BUFFERS: list[Any] = ["text", 123, None, 1.5, [1, 2], object()]


@pytest.mark.parametrize("bad", BAD_BUFFERS, ids=lambda b: type(b).__name__)
def test_non_bytes_like_arguments_raise_type_error(bad: Any) -> None:
    calls = [
        lambda: crypto.sha256(bad),
        lambda: crypto.Sha256().update(bad),
        lambda: crypto.hmac_sha256(bad, b"x"),
        lambda: crypto.hmac_sha256(b"k", bad),
        lambda: crypto.hmac_sha256_verify(b"k", b"x", bad),
        lambda: crypto.chacha20poly1305_encrypt(bad, bytes(12), b"x"),
        lambda: crypto.chacha20poly1305_encrypt(bytes(32), bad, b"x"),
        lambda: crypto.chacha20poly1305_encrypt(bytes(32), bytes(12), bad),
        lambda: crypto.chacha20poly1305_encrypt(bytes(32), bytes(12), b"x", bad),
        lambda: crypto.chacha20poly1305_decrypt(bytes(32), bytes(12), bad),
        lambda: crypto.merkle_verify(bad, 0, 1, [], bytes(32)),
        lambda: crypto.merkle_verify(b"x", 0, 1, [], bad),
    ]
    for call in calls:
        with pytest.raises(TypeError):
            call()


def test_str_is_rejected_with_a_hint() -> None:
    with pytest.raises(TypeError, match="not str"):
        crypto.sha256("abc")
    with pytest.raises(TypeError, match=r"messages\[1\]"):
        crypto.sha256_many([b"a", "b"])
    with pytest.raises(TypeError, match="single str"):
        crypto.sha256_many("abc")


def test_batch_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="single bytes"):
        crypto.sha256_many(b"abc")
    with pytest.raises(TypeError, match="list of bytes-like"):
        crypto.sha256_many(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"messages\[0\]"):
        crypto.hmac_sha256_many(b"k", [None])
    with pytest.raises(ValueError, match="2-D uint8"):
        crypto.sha256_many(np.zeros(10, dtype=np.uint8))
    with pytest.raises(ValueError, match="2-D uint8"):
        crypto.sha256_many(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(TypeError, match=r"leaves\[2\]"):
        crypto.merkle_root([b"a", b"b", 3])


def test_merkle_arguments_are_checked() -> None:
    leaves = [b"a", b"b", b"c"]
    with pytest.raises(ValueError, match="out of range"):
        crypto.merkle_proof(leaves, 3)
    with pytest.raises(ValueError, match=">= 0"):
        crypto.merkle_proof(leaves, -1)
    with pytest.raises(TypeError, match="index must be an int"):
        crypto.merkle_proof(leaves, 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="index must be an int"):
        crypto.merkle_proof(leaves, True)
    with pytest.raises(ValueError, match="out of range"):
        crypto.merkle_proof([], 0)
    root = crypto.merkle_root(leaves)
    proof = crypto.merkle_proof(leaves, 0)
    with pytest.raises(ValueError, match=r"proof\[0\] must be 32 bytes"):
        crypto.merkle_verify(b"a", 0, 3, [proof[0][:31], proof[1]], root)
    with pytest.raises(ValueError, match="root must be 32 bytes"):
        crypto.merkle_verify(b"a", 0, 3, proof, root[:16])
    with pytest.raises(TypeError, match="proof must be a list"):
        crypto.merkle_verify(b"a", 0, 3, b"".join(proof), root)
    with pytest.raises(TypeError, match="tree_size must be an int"):
        crypto.merkle_verify(b"a", 0, "3", proof, root)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tree_size must be >= 0"):
        crypto.merkle_verify(b"a", 0, -3, proof, root)
    assert not crypto.merkle_verify(b"a", 5, 3, proof, root)
    assert not crypto.merkle_verify(b"a", 0, 0, proof, root)
    assert not crypto.merkle_verify(b"a", 0, 2**70, proof, root)


def test_native_layer_rejects_null_and_short_buffers() -> None:
    from nexpo._native import check, ffi, lib

    out = ffi.new("uint8_t[32]")
    with pytest.raises(ValueError, match="NULL pointer"):
        check(lib.nexpo_sha256(ffi.NULL, 5, out, 32))
    with pytest.raises(ValueError, match="need 32 bytes"):
        check(lib.nexpo_sha256(ffi.NULL, 0, out, 16))
    with pytest.raises(ValueError, match="negative length"):
        check(lib.nexpo_sha256(ffi.NULL, 2**63, out, 32))
    lengths = ffi.new("uint64_t[]", [3, 3])
    with pytest.raises(ValueError, match="add up to"):
        check(lib.nexpo_sha256_many(b"abcde", 5, lengths, 2, ffi.new("uint8_t[64]"), 64))
    with pytest.raises(ValueError, match="equal rows"):
        check(lib.nexpo_sha256_many(b"abcde", 5, ffi.NULL, 2, ffi.new("uint8_t[64]"), 64))
    lengths = ffi.new("uint64_t[]", [2**64 - 1, 6])
    with pytest.raises(ValueError, match="longer than the buffer"):
        check(lib.nexpo_sha256_many(b"abcde", 5, lengths, 2, ffi.new("uint8_t[64]"), 64))
    state = bytearray(lib.nexpo_sha256_state_size())
    with pytest.raises(ValueError, match="not an initialised"):
        check(lib.nexpo_sha256_update(ffi.from_buffer("uint8_t[]", state), len(state), b"x", 1))
    with pytest.raises(ValueError, match="state: need"):
        check(lib.nexpo_sha256_init(ffi.from_buffer("uint8_t[]", state), len(state) - 1))


def test_kernel_counters_advance() -> None:
    from nexpo._native import ffi, lib

    def snapshot() -> dict[str, int]:
        n = lib.nexpo_kernel_count()
        calls = ffi.new("uint64_t[]", n)
        nbytes = ffi.new("uint64_t[]", n)
        lib.nexpo_kernel_stats(calls, nbytes, n)
        return {ffi.string(lib.nexpo_kernel_name(i)).decode(): calls[i] for i in range(n)}

    before = snapshot()
    crypto.sha256(b"x")
    crypto.sha256_many([b"a", b"b"])
    crypto.hmac_sha256(b"k", b"x")
    crypto.merkle_root([b"a"])
    crypto.chacha20poly1305_encrypt(bytes(32), bytes(12), b"x")
    after = snapshot()
    for name in ("sha256", "sha256_many", "hmac_sha256", "merkle", "chacha20poly1305"):
        assert after[name] == before[name] + 1, name

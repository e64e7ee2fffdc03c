"""nexpo.crypto next to its peers, in one run: hashlib, hmac, a pure-Python RFC 9162 Merkle tree
on hashlib, and cryptography's AESGCM, ChaCha20Poly1305 and Ed25519.

Every case records what one call processes (``bytes`` and/or ``msgs``) in ``extra_info`` so a
report can compute GB/s or M msgs/s, and ``correct`` = did nexpo's output match the peer's.
Sizes shrink under ``NEXPO_BENCH_MODE=quick``. Threads: ``threads=N`` cases set the native pool
to N workers for the call (the peers are single-threaded Python).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from pytest_benchmark.fixture import BenchmarkFixture

import nexpo
from nexpo import crypto

QUICK = os.environ.get("NEXPO_BENCH_MODE", "full") == "quick"


MIB = 1024 * 1024
BIG = (16 if QUICK else 64) * MIB
MANY = 100_000 if QUICK else 1_000_000
HMAC_MANY = 100_000
MERKLE_LEAVES = 2**16 if QUICK else 2**20


@pytest.fixture
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """Set the native pool size for one case (parametrized indirectly), then restore it."""
    previous = nexpo.get_num_threads()
    n = int(getattr(request, "param", 1))
    nexpo.set_num_threads(n)
    try:
        yield n
    finally:
        nexpo.set_num_threads(previous)


def _run(benchmark: BenchmarkFixture, fn: Callable[[], Any], rounds: int) -> Any:
    return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)


# --- sha256 over one large buffer ------------------------------------------------------------

_big = os.urandom(BIG)
_big_digest = hashlib.sha256(_big).digest()


@pytest.mark.parametrize("impl", ["hashlib", "nexpo"])
def test_sha256_large(benchmark: BenchmarkFixture, impl: str) -> None:
    benchmark.group = f"crypto: sha256 {BIG // MIB} MiB"
    fn = (lambda: hashlib.sha256(_big).digest()) if impl == "hashlib" else (lambda: crypto.sha256(_big))
    out = _run(benchmark, fn, rounds=5)
    benchmark.extra_info.update(implementation=impl, bytes=BIG, correct=out == _big_digest)


# --- sha512 at three sizes: one call's overhead (64 B), a message (16 KiB), throughput -------

_SHA512_SIZES = {"64 B": 64, "16 KiB": 16 * 1024, "16 MiB": 16 * MIB}
_sha512_inputs = {label: os.urandom(n) for label, n in _SHA512_SIZES.items()}


@pytest.mark.parametrize("size", list(_SHA512_SIZES))
@pytest.mark.parametrize("impl", ["hashlib", "nexpo"])
def test_sha512(benchmark: BenchmarkFixture, impl: str, size: str) -> None:
    benchmark.group = f"crypto: sha512 {size}"
    data = _sha512_inputs[size]
    fn = (lambda: hashlib.sha512(data).digest()) if impl == "hashlib" else (lambda: crypto.sha512(data))
    # short calls: pytest-benchmark calibrates many iterations per round
    out = _run(benchmark, fn, rounds=5) if _SHA512_SIZES[size] >= MIB else benchmark(fn)
    benchmark.extra_info.update(
        implementation=impl, bytes=_SHA512_SIZES[size], correct=out == hashlib.sha512(data).digest()
    )


# --- sha256_many: 1M x 64 B ------------------------------------------------------------------

_msgs = [os.urandom(64) for _ in range(MANY)]
_rows = np.frombuffer(b"".join(_msgs), dtype=np.uint8).reshape(MANY, 64)
_msgs_digests = [hashlib.sha256(m).digest() for m in _msgs]


def _hashlib_loop() -> list[bytes]:
    sha = hashlib.sha256
    return [sha(m).digest() for m in _msgs]


def test_sha256_many_hashlib_loop(benchmark: BenchmarkFixture) -> None:
    benchmark.group = f"crypto: sha256_many {MANY} x 64 B"
    out = _run(benchmark, _hashlib_loop, rounds=3)
    benchmark.extra_info.update(implementation="hashlib loop", msgs=MANY, bytes=64 * MANY, correct=True)
    assert out == _msgs_digests


@pytest.mark.parametrize("threads", [1, 2], indirect=True)
@pytest.mark.parametrize("form", ["list", "array"])
def test_sha256_many_nexpo(benchmark: BenchmarkFixture, threads: int, form: str) -> None:
    benchmark.group = f"crypto: sha256_many {MANY} x 64 B"
    if form == "list":
        out = _run(benchmark, lambda: crypto.sha256_many(_msgs), rounds=5)
        correct = out == _msgs_digests
    else:
        out = _run(benchmark, lambda: crypto.sha256_many(_rows), rounds=5)
        correct = out.tobytes() == b"".join(_msgs_digests)
    benchmark.extra_info.update(
        implementation=f"nexpo {form} threads={threads}", msgs=MANY, bytes=64 * MANY, correct=correct
    )


# --- hmac_sha256_many: 64 B messages ---------------------------------------------------------

_key = os.urandom(32)
_hmac_msgs = _msgs[:HMAC_MANY]
_hmac_expected = [hmac.new(_key, m, hashlib.sha256).digest() for m in _hmac_msgs]


@pytest.mark.parametrize("impl", ["hmac.new loop", "nexpo"])
def test_hmac_sha256_many(benchmark: BenchmarkFixture, impl: str) -> None:
    benchmark.group = f"crypto: hmac_sha256_many {HMAC_MANY} x 64 B"
    if impl == "nexpo":
        out = _run(benchmark, lambda: crypto.hmac_sha256_many(_key, _hmac_msgs), rounds=5)
    else:
        new, sha = hmac.new, hashlib.sha256
        out = _run(benchmark, lambda: [new(_key, m, sha).digest() for m in _hmac_msgs], rounds=3)
    benchmark.extra_info.update(
        implementation=impl, msgs=HMAC_MANY, bytes=64 * HMAC_MANY, correct=out == _hmac_expected
    )


# --- merkle_root of 2^20 leaves --------------------------------------------------------------


def merkle_root_python(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash on hashlib, bottom-up (odd last node carried up)."""
    sha = hashlib.sha256
    if not leaves:
        return sha().digest()
    level = [sha(b"\x00" + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


_leaves = [os.urandom(32) for _ in range(MERKLE_LEAVES)]
_merkle_expected = merkle_root_python(_leaves)


@pytest.mark.parametrize("impl", ["python+hashlib", "nexpo"])
def test_merkle_root(benchmark: BenchmarkFixture, impl: str) -> None:
    benchmark.group = f"crypto: merkle_root {MERKLE_LEAVES} leaves x 32 B"
    if impl == "nexpo":
        out = _run(benchmark, lambda: crypto.merkle_root(_leaves), rounds=5)
    else:
        out = _run(benchmark, lambda: merkle_root_python(_leaves), rounds=2)
    benchmark.extra_info.update(
        implementation=impl, msgs=MERKLE_LEAVES, bytes=32 * MERKLE_LEAVES, correct=out == _merkle_expected
    )


# --- AEADs: AES-256-GCM and ChaCha20-Poly1305 ------------------------------------------------

_aead_key = os.urandom(32)
_nonce = os.urandom(12)
_aad = os.urandom(16)
AEAD_SIZES = {"64 B": 64, "1 KiB": 1024, "16 KiB": 16 * 1024, "1 MiB": MIB}
# (cryptography's key object, nexpo's key object, nexpo's one-shot encrypt and decrypt)
AEADS: dict[str, tuple[Any, Any, Callable[..., bytes], Callable[..., bytes]]] = {
    "aes256gcm": (
        AESGCM(_aead_key),
        crypto.AesGcm(_aead_key),
        crypto.aes256gcm_encrypt,
        crypto.aes256gcm_decrypt,
    ),
    "chacha20poly1305": (
        ChaCha20Poly1305(_aead_key),
        crypto.ChaCha20Poly1305(_aead_key),
        crypto.chacha20poly1305_encrypt,
        crypto.chacha20poly1305_decrypt,
    ),
}


@pytest.mark.parametrize("impl", ["cryptography", "nexpo", "nexpo function"])
@pytest.mark.parametrize("size", list(AEAD_SIZES))
@pytest.mark.parametrize("op", ["encrypt", "decrypt"])
@pytest.mark.parametrize("alg", list(AEADS))
def test_aead(benchmark: BenchmarkFixture, alg: str, op: str, size: str, impl: str) -> None:
    """One message per call, the key set up beforehand (key objects) or per call (functions)."""
    peer, ours, encrypt_fn, decrypt_fn = AEADS[alg]
    n = AEAD_SIZES[size]
    plaintext = os.urandom(n)
    sealed = peer.encrypt(_nonce, plaintext, _aad)
    arg, expected = (plaintext, sealed) if op == "encrypt" else (sealed, plaintext)
    # per round: enough calls to take ~1 ms or more, so the timer does not dominate
    calls = max(1, (4 * MIB) // (n * 8)) if n < MIB else 1
    if impl == "nexpo function":
        fn = encrypt_fn if op == "encrypt" else decrypt_fn

        def call() -> bytes:
            return fn(_aead_key, _nonce, arg, _aad)
    else:
        obj = ours if impl == "nexpo" else peer
        call = functools.partial(getattr(obj, op), _nonce, arg, _aad)

    def run() -> bytes:
        for _ in range(calls):
            out = call()
        return out

    benchmark.group = f"crypto: {alg} {op} {size}"
    out = _run(benchmark, run, rounds=20 if n < MIB else 10)
    benchmark.extra_info.update(implementation=impl, bytes=n * calls, msgs=calls, correct=out == expected)


# --- Ed25519 -------------------------------------------------------------------------------
# Peers: cryptography with a key object made once ("cryptography", its fastest use) and made
# from the raw seed / public key on each call ("cryptography from bytes", the same inputs as
# nexpo's functions take).

_ed_seed = os.urandom(32)
_ed_key = Ed25519PrivateKey.from_private_bytes(_ed_seed)
_ed_public = _ed_key.public_key().public_bytes_raw()
_ed_public_key = _ed_key.public_key()
_ED_MESSAGE = os.urandom(64)
_ED_SIGNATURE = _ed_key.sign(_ED_MESSAGE)
_ED_CALLS = 200
_ED_MANY = 10_000
_ED_IMPLS = ["cryptography", "cryptography from bytes", "nexpo"]


@pytest.mark.parametrize("impl", [*_ED_IMPLS, "nexpo function"])
def test_ed25519_sign(benchmark: BenchmarkFixture, impl: str) -> None:
    """Key objects made once ("nexpo": Ed25519SigningKey, "cryptography": Ed25519PrivateKey), and
    functions of the raw seed ("nexpo function": ed25519_sign, "cryptography from bytes")."""
    seed, message = _ed_seed, _ED_MESSAGE
    if impl in ("nexpo", "cryptography"):
        sign = crypto.Ed25519SigningKey(seed).sign if impl == "nexpo" else _ed_key.sign

        def run() -> bytes:
            for _ in range(_ED_CALLS):
                out = sign(message)
            return out
    elif impl == "nexpo function":
        sign_seed = crypto.ed25519_sign

        def run() -> bytes:
            for _ in range(_ED_CALLS):
                out = sign_seed(seed, message)
            return out
    else:
        from_bytes = Ed25519PrivateKey.from_private_bytes

        def run() -> bytes:
            for _ in range(_ED_CALLS):
                out = from_bytes(seed).sign(message)
            return out

    benchmark.group = "crypto: ed25519 sign 64 B"
    out = _run(benchmark, run, rounds=15)
    benchmark.extra_info.update(implementation=impl, msgs=_ED_CALLS, correct=out == _ED_SIGNATURE)


def _peer_verify(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize("impl", _ED_IMPLS)
def test_ed25519_verify(benchmark: BenchmarkFixture, impl: str) -> None:
    public, message, signature = _ed_public, _ED_MESSAGE, _ED_SIGNATURE
    if impl == "nexpo":
        verify = crypto.ed25519_verify

        def run() -> bool:
            for _ in range(_ED_CALLS):
                ok = verify(public, message, signature)
            return ok
    elif impl == "cryptography":

        def run() -> bool:
            for _ in range(_ED_CALLS):
                ok = _peer_verify(_ed_public_key, signature, message)
            return ok
    else:
        from_bytes = Ed25519PublicKey.from_public_bytes

        def run() -> bool:
            for _ in range(_ED_CALLS):
                ok = _peer_verify(from_bytes(public), signature, message)
            return ok

    benchmark.group = "crypto: ed25519 verify 64 B"
    out = _run(benchmark, run, rounds=15)
    benchmark.extra_info.update(implementation=impl, msgs=_ED_CALLS, correct=out is True)


def _ed_batch() -> tuple[list[bytes], list[bytes], list[bytes], list[bool]]:
    seeds = [os.urandom(32) for _ in range(64)]
    keys = [Ed25519PrivateKey.from_private_bytes(s) for s in seeds]
    publics = [k.public_key().public_bytes_raw() for k in keys]
    pubs, msgs, sigs = [], [], []
    for i in range(_ED_MANY):
        message = os.urandom(64)
        pubs.append(publics[i % 64])
        msgs.append(message)
        sigs.append(keys[i % 64].sign(message))
    for i in range(0, _ED_MANY, 997):  # a few bad signatures
        sigs[i] = sigs[i][:40] + bytes([sigs[i][40] ^ 1]) + sigs[i][41:]
    expected = [i % 997 != 0 for i in range(_ED_MANY)]
    return pubs, msgs, sigs, expected


@pytest.mark.parametrize("threads", [2], indirect=True)
@pytest.mark.parametrize("impl", ["cryptography loop", "nexpo"])
def test_ed25519_verify_many(benchmark: BenchmarkFixture, impl: str, threads: int) -> None:
    pubs, msgs, sigs, expected = _ed_batch()
    if impl == "nexpo":

        def run() -> list[bool]:
            return crypto.ed25519_verify_many(pubs, msgs, sigs)
    else:
        key_objects = [Ed25519PublicKey.from_public_bytes(p) for p in pubs]  # made once, untimed

        def run() -> list[bool]:
            return [_peer_verify(k, s, m) for k, m, s in zip(key_objects, msgs, sigs, strict=True)]

    benchmark.group = f"crypto: ed25519 verify_many {_ED_MANY} × 64 B"
    out = _run(benchmark, run, rounds=3)
    name = f"nexpo threads={threads}" if impl == "nexpo" else impl
    benchmark.extra_info.update(implementation=name, msgs=_ED_MANY, correct=out == expected)

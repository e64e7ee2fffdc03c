"""nexpo.crypto.sha512 / Sha512: the FIPS 180-4 examples, differential checks against hashlib
at every padding boundary up to 1 MiB on every ISA path (portable, AVX2 with its SSE message
schedule, AVX-512 with its two-block schedule: odd and even block counts), streaming against
one shot, the hashlib shape, bad arguments, and the GIL: long inputs release it, short ones
keep it. HMAC-SHA-512 (hmac_sha512, hmac_sha512_verify): the RFC 4231 SHA-512 cases and
differential checks against the standard library's ``hmac`` over key lengths around the block."""

from __future__ import annotations

import copy
import hashlib
import hmac
import pickle
import random
import sys
import threading
import time

import numpy as np
import pytest

from nexpo import _native, _sha512, crypto

# FIPS 180-4 / the NIST example values for SHA-512
ABC = (
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
)
MSG_896 = (
    b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
    b"hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
)
MSG_896_DIGEST = (
    "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
    "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909"
)
MILLION_A = (
    "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
    "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b"
)
EMPTY = (
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)

# 0, and around every padding boundary (112: no room for the 16-byte length) up to 1 MiB
SIZES = sorted(
    {0, 1, 111, 112, 113, 127, 128, 129, 239, 240, 255, 256, 257, 2047, 2048, 2049}
    | {(1 << k) + d for k in range(12, 21) for d in (-1, 0, 1)}
    | {128 * k + d for k in (3, 5, 7, 9) for d in (-1, 0, 1)}  # odd block counts: a half-used pair
)


def _data(n: int, seed: int = 0) -> bytes:
    return random.Random(seed + n).randbytes(n)


def test_fips_180_4_examples(isa: str) -> None:
    assert crypto.sha512(b"abc").hex() == ABC
    assert crypto.sha512(MSG_896).hex() == MSG_896_DIGEST
    assert crypto.sha512(b"").hex() == EMPTY
    assert crypto.sha512(b"a" * 1_000_000).hex() == MILLION_A
    h = crypto.Sha512()
    for _ in range(1000):
        h.update(b"a" * 1000)
    assert h.hexdigest() == MILLION_A


@pytest.mark.parametrize("n", SIZES)
def test_one_shot_and_streaming_match_hashlib(isa: str, n: int) -> None:
    data = _data(n)
    expected = hashlib.sha512(data).digest()
    assert crypto.sha512(data) == expected
    assert crypto.Sha512(data).digest() == expected


def test_chunked_equals_one_shot(isa: str, rng: random.Random) -> None:
    for n in (0, 1, 127, 128, 129, 5000, 70_000):
        data = _data(n)
        for _ in range(5):
            h = crypto.Sha512()
            pos = 0
            while pos < n:
                step = rng.choice((1, 7, 111, 112, 128, 129, 3000, 50_000))
                assert h.update(data[pos : pos + step]) is h
                pos += step
            assert h.digest() == hashlib.sha512(data).digest(), n
            assert h.hexdigest() == hashlib.sha512(data).hexdigest()


def test_hashlib_shape() -> None:
    h = crypto.Sha512()
    assert (h.name, h.digest_size, h.block_size) == ("sha512", 64, 128)
    assert (h.name, h.digest_size, h.block_size) == (
        hashlib.sha512().name,
        hashlib.sha512().digest_size,
        hashlib.sha512().block_size,
    )
    assert h.digest() == hashlib.sha512().digest()
    assert "Sha512" in repr(h)


def test_copy_is_independent_and_digest_does_not_finalise() -> None:
    a = crypto.Sha512().update(b"prefix-")
    b = a.copy()
    c = copy.copy(a)
    a.update(b"one")
    b.update(b"two")
    assert a.digest() == hashlib.sha512(b"prefix-one").digest()
    assert b.digest() == hashlib.sha512(b"prefix-two").digest()
    assert c.digest() == hashlib.sha512(b"prefix-").digest()
    a.update(b"more")
    assert a.digest() == hashlib.sha512(b"prefix-onemore").digest()


def test_every_bytes_like_is_accepted() -> None:
    data = bytes(range(200))
    for obj in (data, bytearray(data), memoryview(data), np.frombuffer(data, dtype=np.uint8)):
        assert crypto.sha512(obj) == hashlib.sha512(data).digest()
        assert crypto.Sha512().update(obj).digest() == hashlib.sha512(data).digest()


def test_bad_arguments_raise_clear_errors() -> None:
    for bad in ("text", None, 3, [1, 2]):
        with pytest.raises(TypeError, match="bytes-like"):
            crypto.sha512(bad)
        with pytest.raises(TypeError, match="bytes-like"):
            crypto.Sha512().update(bad)
    with pytest.raises(TypeError, match="encode it first"):
        crypto.sha512("text")
    strided = memoryview(bytes(range(64)))[::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        crypto.sha512(strided)
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(crypto.Sha512())


def test_native_state_is_read_only() -> None:
    h = crypto.Sha512(b"abc")
    with pytest.raises(AttributeError):
        h._native = (bytearray(8), threading.Lock())
    assert h.digest() == hashlib.sha512(b"abc").digest()


def test_a_corrupted_state_is_an_error_not_a_crash() -> None:
    state, _lock = crypto.Sha512()._native
    state[:] = bytes(len(state))  # the magic number gone: never initialised
    with pytest.raises(ValueError, match="not an initialised SHA-512 state"):
        _native.check(_sha512._hp.sha512_update(state, b"x"))
    with pytest.raises(TypeError, match="bytearray"):
        _sha512._hp.sha512_final(bytes(len(state)))  # type: ignore[arg-type]
    status = _sha512._hp.sha512_update(bytearray(8), b"x")
    with pytest.raises(ValueError, match="state: need"):
        _native.check(status)


def test_shared_between_threads() -> None:
    h = crypto.Sha512()
    chunk = bytes(range(256)) * 16  # 4 KiB: long enough to release the GIL

    def feed() -> None:
        for _ in range(100):
            h.update(chunk)

    threads = [threading.Thread(target=feed) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert h.digest() == hashlib.sha512(chunk * 400).digest()


def _ticks_while(work: object) -> int:
    """How often another thread ran while ``work()`` ran, holding the GIL between its calls.

    The switch interval is raised to 10 s so the interpreter never takes the GIL from this
    thread: the counting thread (woken, waiting for the GIL) runs only if ``work`` releases it,
    and it yields the GIL back on every tick.
    """
    ticks = 0
    go, done = threading.Event(), threading.Event()

    def count() -> None:
        nonlocal ticks
        go.wait(10)
        while not done.is_set():
            ticks += 1
            time.sleep(0)

    interval = sys.getswitchinterval()
    t = threading.Thread(target=count)
    t.start()
    sys.setswitchinterval(10.0)
    try:
        go.set()
        work()  # type: ignore[operator]
        seen = ticks  # read before anything here releases the GIL
    finally:
        sys.setswitchinterval(interval)
        done.set()
        go.set()
        t.join(10)
    return seen


def test_long_inputs_release_the_gil() -> None:
    big = bytes(16 << 20)
    assert _ticks_while(lambda: [crypto.sha512(big) for _ in range(3)]) > 0
    h = crypto.Sha512()
    assert _ticks_while(lambda: [h.update(big) for _ in range(3)]) > 0


def test_short_inputs_keep_the_gil() -> None:
    """Below hashlib's threshold (2 KiB) no call releases the GIL: nothing else runs."""
    assert _sha512.GIL_MINSIZE == 2048
    small = bytes(_sha512.GIL_MINSIZE - 1)
    h = crypto.Sha512()
    assert _ticks_while(lambda: [(crypto.sha512(small), h.update(small)) for _ in range(2000)]) == 0


# --- HMAC-SHA-512 ------------------------------------------------------------------------------

# RFC 4231 §4.2-4.8: (key, data, HMAC-SHA-512); test case 5 is truncated to 128 bits
RFC_4231 = [
    (
        b"\x0b" * 20,
        b"Hi There",
        "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cde"
        "daa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
    ),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
    ),
    (
        b"\xaa" * 20,
        b"\xdd" * 50,
        "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39"
        "bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
    ),
    (
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3db"
        "a91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
    ),
    (b"\x0c" * 20, b"Test With Truncation", "415fad6271580a531d4179bc891d87a6"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f352"
        "6b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data."
        b" The key needs to be hashed before being used by the HMAC algorithm.",
        "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944"
        "b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
    ),
]

KEY_LENGTHS = [0, 1, 64, 127, 128, 129, 1000]
# around the padding boundaries of the inner hash (128-byte block after the key's block) and
# past the GIL threshold
DATA_SIZES = [0, 1, 111, 112, 113, 127, 128, 129, 255, 256, 257, 2047, 2048, 2049, 100_000]


def test_hmac_rfc_4231_vectors(isa: str) -> None:
    for key, data, expected in RFC_4231:
        mac = crypto.hmac_sha512(key, data)
        assert mac.hex().startswith(expected)
        assert crypto.hmac_sha512_verify(key, data, mac)


@pytest.mark.parametrize("key_len", KEY_LENGTHS)
def test_hmac_matches_the_standard_library(isa: str, key_len: int) -> None:
    key = _data(key_len, 1_000_003)
    for n in DATA_SIZES:
        data = _data(n, 2_000_006)
        expected = hmac.new(key, data, hashlib.sha512).digest()
        assert crypto.hmac_sha512(key, data) == expected, (key_len, n)
        assert crypto.hmac_sha512_verify(key, data, expected)


def test_hmac_verify_rejects_every_wrong_tag(rng: random.Random) -> None:
    key, data = b"k" * 40, b"message"
    tag = crypto.hmac_sha512(key, data)
    for pos in range(64):
        bad = bytearray(tag)
        bad[pos] ^= 1 << rng.randrange(8)
        assert not crypto.hmac_sha512_verify(key, data, bytes(bad))
    for wrong_length in (b"", tag[:32], tag[:63], tag + b"\x00"):
        assert crypto.hmac_sha512_verify(key, data, wrong_length) is False
    assert not crypto.hmac_sha512_verify(key + b"x", data, tag)
    assert not crypto.hmac_sha512_verify(key, data + b"x", tag)
    assert crypto.hmac_sha512_verify(key, data, tag) is True


def test_hmac_every_bytes_like_is_accepted() -> None:
    key, data = bytes(range(150)), bytes(range(256)) * 3
    expected = hmac.new(key, data, hashlib.sha512).digest()
    for conv in (bytes, bytearray, memoryview, lambda b: np.frombuffer(b, dtype=np.uint8)):
        assert crypto.hmac_sha512(conv(key), conv(data)) == expected
        assert crypto.hmac_sha512_verify(conv(key), conv(data), conv(expected))


def test_hmac_bad_arguments_raise_clear_errors() -> None:
    for bad in ("text", None, 3):
        with pytest.raises(TypeError, match="key must be a bytes-like"):
            crypto.hmac_sha512(bad, b"x")
        with pytest.raises(TypeError, match="data must be a bytes-like"):
            crypto.hmac_sha512(b"k", bad)
        with pytest.raises(TypeError, match="tag must be a bytes-like"):
            crypto.hmac_sha512_verify(b"k", b"x", bad)
    with pytest.raises(ValueError, match="C-contiguous"):
        crypto.hmac_sha512(b"k", memoryview(bytes(64))[::2])
    with pytest.raises(TypeError, match="two arguments"):
        _sha512._hp.hmac_sha512(b"k")  # type: ignore[call-arg]


def test_hmac_long_data_releases_the_gil_short_data_keeps_it() -> None:
    big = bytes(16 << 20)
    assert _ticks_while(lambda: [crypto.hmac_sha512(b"key", big) for _ in range(3)]) > 0
    small = bytes(_sha512.GIL_MINSIZE - 1)
    tag = crypto.hmac_sha512(b"key", small)
    assert (
        _ticks_while(
            lambda: [
                (crypto.hmac_sha512(b"key", small), crypto.hmac_sha512_verify(b"key", small, tag))
                for _ in range(2000)
            ]
        )
        == 0
    )

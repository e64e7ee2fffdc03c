"""Hostile arguments at the native boundary: each test is a way Python-side state once reached
C unchecked (issue 15, "an ndarray subclass whose ``shape`` lies, passed to matmul → SIGSEGV",
and what the native-argument fuzzer, tests/fuzz/, found next to it).

The tests whose failure used to crash the interpreter run in a subprocess, so a regression
fails that test rather than the whole run.
"""

from __future__ import annotations

import array
import hashlib
import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

from nexpo import crypto, scheduler
from nexpo._native import ffi

# Defines lying(arr, **lies): a view of arr whose Python-level attributes say what lies says.
LYING = """
import numpy as np

class Lying(np.ndarray):
    lies = {}
    def __getattribute__(self, name):
        lies = np.ndarray.__getattribute__(self, "lies")
        return lies[name] if name in lies else np.ndarray.__getattribute__(self, name)

def lying(arr, **lies):
    return arr.view(type("Lying", (Lying,), {"lies": lies}))
"""


def isolated(code: str, env: dict[str, str] | None = None) -> str:
    """Run ``LYING + code`` in a fresh interpreter (the environment, NEXPO_CORE_OVERRIDE included,
    is inherited, ``env`` added); it must exit cleanly. Returns its stdout."""
    done = subprocess.run(
        [sys.executable, "-c", LYING + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, f"exit {done.returncode} (negative: a signal)\n{done.stdout}\n{done.stderr}"
    return done.stdout


def lying(arr: np.ndarray[Any, Any], **lies: Any) -> Any:
    namespace: dict[str, Any] = {}
    exec(LYING, namespace)
    return namespace["lying"](arr, **lies)


# --- kernels: shapes, strides and dtypes come from numpy's C struct ----------------------------


def test_matmul_subclass_with_a_lying_shape_does_not_reach_the_kernel() -> None:
    # Issue 15 row 4: a (2, 2) array claiming (2, 100000) made the kernel read 100000 columns.
    out = isolated("""
        from nexpo.kernels import matmul
        a = lying(np.ones((2, 2), np.float32), shape=(2, 100_000))
        b = np.ones((100_000, 3), np.float32)
        for x, y in ((a, b), (b.T.copy(), lying(np.ones((2, 2), np.float32), shape=(100_000, 2)))):
            try:
                matmul(x, y)
            except ValueError as exc:
                assert "not aligned" in str(exc), exc
            else:
                raise AssertionError("a lying shape was believed")
        print(matmul(lying(np.eye(2, dtype=np.float32), shape=(2, 2)), np.ones((2, 2), np.float32)).sum())
    """)
    assert out.strip() == "4.0"


def test_matmul_subclass_with_a_lying_dtype_or_strides_is_computed_on_its_real_memory() -> None:
    out = isolated("""
        import types
        from nexpo.kernels import matmul
        a32 = np.arange(64, dtype=np.float32).reshape(8, 8)
        try:  # claims float64, so the old fast path read 8x8 doubles from 256 bytes
            matmul(lying(a32, dtype=np.dtype(np.float64)), np.ones((8, 8)))
        except TypeError as exc:
            assert "same dtype" in str(exc), exc
        else:
            raise AssertionError("a lying dtype was believed")
        fake = lying(a32, strides=(1 << 30, 1 << 30),
                     flags=types.SimpleNamespace(c_contiguous=False, f_contiguous=False, aligned=True))
        got = matmul(fake, np.eye(8, dtype=np.float32))
        assert np.array_equal(got, a32), got
        print("ok")
    """)
    assert out.strip() == "ok"


def test_matmul_out_with_a_lying_shape_or_writeable_flag_is_refused() -> None:
    out = isolated("""
        import types
        from nexpo.kernels import matmul
        a = np.ones((64, 64))
        small = np.zeros((1, 1))
        try:  # a (1, 1) out claiming (64, 64): the kernel wrote 4096 doubles into 8 bytes
            matmul(a, a, out=lying(small, shape=(64, 64)))
        except ValueError as exc:
            assert "shape" in str(exc), exc
        else:
            raise AssertionError("a lying out shape was believed")
        frozen = bytes(32)
        ro = np.frombuffer(frozen, np.float64).reshape(2, 2)
        flags = types.SimpleNamespace(c_contiguous=True, writeable=True, aligned=True)
        try:  # the memory of an immutable bytes object, claiming to be writeable
            matmul(np.ones((2, 2)), np.ones((2, 2)), out=lying(ro, flags=flags))
        except ValueError as exc:
            assert "writeable" in str(exc), exc
        else:
            raise AssertionError("a lying writeable flag was believed")
        assert frozen == bytes(32)
        print("ok")
    """)
    assert out.strip() == "ok"


def test_linear_bias_with_a_lying_shape_is_refused() -> None:
    out = isolated("""
        from nexpo.kernels import linear
        x, w = np.ones((4, 8)), np.ones((8, 100_000))
        try:  # a 1-element bias claiming 100000: the epilogue read 100000 doubles
            linear(x, w, lying(np.ones(1), shape=(100_000,)), "relu")
        except ValueError as exc:
            assert "bias" in str(exc), exc
        else:
            raise AssertionError("a lying bias shape was believed")
        print("ok")
    """)
    assert out.strip() == "ok"


def test_an_object_pretending_to_be_an_ndarray_is_refused() -> None:
    out = isolated("""
        import types
        from nexpo.kernels import matmul
        class Fake(bytearray):  # isinstance(Fake(), np.ndarray) is True
            __class__ = np.ndarray
            dtype, ndim, shape = np.dtype(np.float32), 2, (1024, 1024)
            flags = types.SimpleNamespace(c_contiguous=True, aligned=True)
        try:
            matmul(Fake(16), Fake(16))
        except TypeError as exc:
            assert "numpy.ndarray" in str(exc), exc
        else:
            raise AssertionError("a fake ndarray reached the kernel")
        print("ok")
    """)
    assert out.strip() == "ok"


def test_matmul_operand_reshaped_between_its_checks_and_the_kernel() -> None:
    # Found by the fuzzer's race cases: the checked path read w.shape again after validating
    # it, so another thread flipping it to (32, 128) made the kernel read 64 rows of 128 from
    # w's 64 x 64 (with large arrays, a SIGSEGV). A profile hook stands in for that thread,
    # deterministically: it flips w's shape at every function call inside nexpo.kernels.
    out = isolated("""
        import sys
        from nexpo.kernels import linear, matmul
        w = np.ones((64, 64), np.float32)
        calls = [0, 0]  # [calls seen, the first one to flip at]
        def flip(frame, event, arg):
            if event == "call" and frame.f_globals.get("__name__") == "nexpo.kernels":
                calls[0] += 1
                if calls[0] >= calls[1]:
                    w.shape = (32, 128) if w.shape == (64, 64) else (64, 64)
        x = np.ones((8, 64), np.float32)
        answers = 0
        for lhs in (x, np.asfortranarray(x), x[:, ::-1]):
            for call in (lambda: matmul(lhs, w), lambda: linear(lhs, w, None, "relu")):
                for first in range(1, 9):
                    w.shape = (64, 64)
                    calls[:] = [0, first]
                    sys.setprofile(flip)
                    try:
                        c = call()
                    except ValueError:
                        continue
                    finally:
                        sys.setprofile(None)
                    answers += 1
                    assert c.shape == (8, 64) and (c == 64).all(), c.shape
        print("ok", answers > 0)
    """)
    assert out.strip() == "ok True"


# --- crypto -------------------------------------------------------------------------------------


def test_sha256_state_cannot_be_replaced_from_python() -> None:
    h = crypto.Sha256(b"abc")
    for name in ("_native", "_state", "_ptr", "_lock"):
        with pytest.raises(AttributeError):
            setattr(h, name, ffi.cast("uint8_t *", 8))
        with pytest.raises(AttributeError):
            object.__setattr__(h, name, ffi.new("uint8_t[]", 1))
    assert h.update(b"def").digest() == hashlib.sha256(b"abcdef").digest()
    with pytest.raises(TypeError, match="pickle"):
        __import__("pickle").dumps(h)
    assert __import__("copy").copy(h).digest() == h.digest()


class LyingLen(bytes):
    def __len__(self) -> int:
        return 4


def test_batch_lengths_come_from_the_buffers_not_len() -> None:
    # array('H') has len 2 but 4 bytes; a bytes subclass claims 4 but holds 2: the sums agree,
    # so the old code believed len() and split the batch at the wrong place.
    items = [array.array("H", [0, 0]), LyingLen(b"xx")]
    want = [hashlib.sha256(b"\0\0\0\0").digest(), hashlib.sha256(b"xx").digest()]
    assert crypto.sha256_many(items) == want
    zero_d = np.frombuffer(b"abc", "V3").reshape(())  # bytes-like, but len() raises
    want = [hashlib.sha256(b"abc").digest(), hashlib.sha256(b"d").digest()]
    assert crypto.sha256_many([zero_d, b"d"]) == want


def test_batch_array_subclass_with_a_lying_shape() -> None:
    rows = np.frombuffer(bytes(range(64)), np.uint8).reshape(2, 32)
    want = np.stack([np.frombuffer(hashlib.sha256(r.tobytes()).digest(), np.uint8) for r in rows])
    got = crypto.sha256_many(lying(rows.copy(), shape=(1, 64), ndim=2))
    assert got.shape == (2, 32) and (got == want).all()


@pytest.mark.parametrize("call", [
    crypto.sha256,
    lambda v: crypto.hmac_sha256(v, b"data"),
    lambda v: crypto.sha256_many([b"ok", v]),
    lambda v: crypto.chacha20poly1305_encrypt(bytes(32), bytes(12), v),
    lambda v: crypto.Sha256().update(v),
])
def test_strided_buffers_are_value_errors(call: Any) -> None:
    # BufferError (from the buffer protocol) was not one of the documented errors.
    for strided in (memoryview(b"abcdef")[::2], np.arange(8, dtype=np.uint8)[::-1]):
        with pytest.raises(ValueError, match="C-contiguous"):
            call(strided)


class LyingInt(int):
    """Compares as whatever makes a range check pass."""

    def __lt__(self, other: object) -> bool:
        return False

    def __ge__(self, other: object) -> bool:
        return True


def test_int_subclass_comparisons_are_not_believed() -> None:
    leaves = [b"a", b"b", b"c"]
    assert crypto.merkle_proof(leaves, LyingInt(1)) == crypto.merkle_proof(leaves, 1)
    with pytest.raises(ValueError, match="out of range"):
        crypto.merkle_proof(leaves, LyingInt(7))
    with pytest.raises(ValueError, match="between 1 and 1024, got 5000"):
        scheduler.set_num_threads(LyingInt(5000))


def test_merkle_of_more_empty_leaves_than_memory_holds() -> None:
    # An (n, 0) array is n leaves in no memory: the native tree scratch (32 n bytes) was a
    # malloc whose failure Nim's -d:useMalloc allocator did not check, so 2**40 leaves crashed.
    out = isolated("""
        import nexpo
        from nexpo import crypto, scheduler
        from nexpo._native import ffi, lib, error_for
        for call in (crypto.merkle_root, lambda a: crypto.merkle_proof(a, 0), crypto.sha256_many):
            try:
                call(np.empty((1 << 40, 0), np.uint8))
            except ValueError as exc:
                assert "empty rows" in str(exc), exc
            else:
                raise AssertionError("2**40 empty leaves accepted")
        out, count = ffi.new("uint8_t[2048]"), ffi.new("int32_t *")
        assert lib.nexpo_merkle_root(b"", 0, ffi.NULL, 1 << 40, out, 32) == lib.NEXPO_ENOMEM
        assert lib.nexpo_merkle_proof(b"", 0, ffi.NULL, 1 << 40, 0, out, 2048, count) == lib.NEXPO_ENOMEM
        assert "cannot allocate" in str(error_for(lib.NEXPO_ENOMEM))
        print("ok")
    """, env={"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":allocator_may_return_null=1"})
    assert out.strip() == "ok"

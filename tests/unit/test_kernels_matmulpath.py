"""nexpo._matmulpath (nexpo/_matmulpath.c): kernels.matmul's common call in C.

It takes two exact, 2-D, aligned, C-contiguous ndarrays of one native float dtype and returns
NotImplemented for anything else, which kernels.matmul's checked path then takes.
"""

from __future__ import annotations

import inspect
import random
import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from nexpo import kernels
from nexpo.kernels import matmul

Array = npt.NDArray[Any]
DTYPES = [np.float32, np.float64]
fast = kernels._mp.plain


def operands(m: int, k: int, n: int, dtype: Any, seed: int = 0) -> tuple[Array, Array]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)


def assert_gemm_close(c: Array, a: Array, b: Array) -> None:
    """Within the GEMM error bound 4·k·eps·(|A||B|), elementwise, of the float64 product."""
    assert c.shape == (a.shape[0], b.shape[1])
    assert c.dtype == a.dtype and c.flags.c_contiguous and type(c) is np.ndarray
    eps = np.finfo(c.dtype).eps
    ref = a.astype(np.float64) @ b.astype(np.float64)
    bound = 4 * max(a.shape[1], 1) * eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    assert np.all(np.abs(c - ref) <= bound + np.finfo(np.float64).tiny)


def _shapes() -> list[tuple[int, int, int]]:
    rng = random.Random(17)
    edges = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 130]
    picked = {(rng.choice(edges), rng.choice(edges), rng.choice(edges)) for _ in range(40)}
    picked |= {(rng.randint(1, 130), rng.randint(1, 130), rng.randint(1, 130)) for _ in range(20)}
    return sorted(picked | {(1, 1, 1), (64, 64, 64), (130, 130, 130), (1, 130, 1), (130, 1, 130)})


SHAPES = _shapes()


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_c_path_equals_numpy_for_many_shapes_on_every_isa(isa: str, dtype: Any) -> None:
    for m, k, n in SHAPES:
        a, b = operands(m, k, n, dtype, seed=m * 10_000 + k * 100 + n)
        c = fast(a, b)
        assert c is not NotImplemented, (m, k, n)
        assert_gemm_close(c, a, b)
        assert np.array_equal(matmul(a, b), c)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "k", "n"), [(0, 5, 3), (4, 0, 3), (4, 5, 0), (0, 0, 0)])
def test_empty_dimensions(dtype: Any, m: int, k: int, n: int) -> None:
    a, b = np.ones((m, k), dtype), np.ones((k, n), dtype)
    c = fast(a, b)
    assert c is not NotImplemented
    assert c.shape == (m, n) and c.dtype == dtype
    assert np.array_equal(c, np.zeros((m, n), dtype))


def test_read_only_and_single_row_or_column_views_take_the_c_path() -> None:
    a, b = operands(5, 9, 6, np.float32)
    a.flags.writeable = False
    assert_gemm_close(fast(a, b), a, b)
    big = np.arange(60, dtype=np.float64).reshape(6, 10)
    row, col = big[2:3, 1:5], np.arange(6.0)[:, None]  # a size-1 axis's stride is never used
    assert row.strides == (80, 8) and col.strides == (8, 0)
    assert fast(row, np.ones((4, 2))) is not NotImplemented
    assert np.array_equal(fast(row, np.ones((4, 2))), row @ np.ones((4, 2)))
    assert np.array_equal(fast(np.ones((3, 6)), col), np.ones((3, 6)) @ col)


class Sub(np.ndarray):
    pass


def _misaligned(dtype: Any) -> Array:
    size = np.dtype(dtype).itemsize
    raw = np.zeros(16 * size + 1, np.uint8)[1:]
    arr = raw.view(dtype).reshape(4, 4)
    assert not arr.flags.aligned
    arr[...] = np.arange(16).reshape(4, 4)
    return np.asarray(arr)


def _declined() -> dict[str, tuple[Any, Any]]:
    a, b = operands(4, 4, 4, np.float64)
    return {
        "fortran": (np.asfortranarray(a), b),
        "strided": (a[:, ::2], b[:2]),
        "transposed": (a, b.T),
        "subclass": (a.view(Sub), b),
        "subclass b": (a, b.view(Sub)),
        "matrix": (a.view(np.matrix), b),
        "mixed dtype": (a, b.astype(np.float32)),
        "float16": (a.astype(np.float16), b.astype(np.float16)),
        "int": (a.astype(np.int64), b.astype(np.int64)),
        "big-endian": (a.astype(">f8"), b.astype(">f8")),
        # native float64, but not numpy's own dtype object: the C path compares it by identity
        "dtype with metadata": (a.astype(np.dtype(np.float64, metadata={"unit": "m"})), b),
        "misaligned f32": (_misaligned(np.float32), b.astype(np.float32)),
        "misaligned f64": (_misaligned(np.float64), b),
        "1-D": (a[0], b),
        "3-D": (a.reshape(1, 4, 4), b),
        "0-D": (np.float64(1.0), b),
        "list": (a.tolist(), b),
        "not aligned shapes": (a, b[:3]),
        "memoryview": (memoryview(a.tobytes()).cast("d", (4, 4)), b),
    }


DECLINED = _declined()


@pytest.mark.parametrize("case", list(DECLINED))
def test_anything_else_is_declined_and_the_checked_path_answers(case: str) -> None:
    a, b = DECLINED[case]
    assert fast(a, b) is NotImplemented
    if case in ("fortran", "strided", "transposed", "subclass", "subclass b", "matrix",
                "misaligned f32", "misaligned f64", "dtype with metadata"):
        c = matmul(a, b)
        assert type(c) is np.ndarray
        assert_gemm_close(c, np.asarray(a), np.asarray(b))  # (allclose's atol failed near 0)
    elif case in ("mixed dtype", "float16", "int", "big-endian", "list", "memoryview", "0-D"):
        with pytest.raises(TypeError):
            matmul(a, b)
    else:
        with pytest.raises(ValueError, match=r"must be 2-D|not aligned"):
            matmul(a, b)


def test_errors_are_the_checked_paths_messages() -> None:
    a, b = operands(4, 4, 4, np.float64)
    with pytest.raises(ValueError, match=r"shapes \(4, 4\) and \(3, 4\) are not aligned"):
        matmul(a, b[:3])
    with pytest.raises(TypeError, match="must have the same dtype, got float64 and float32"):
        matmul(a, b.astype(np.float32))
    with pytest.raises(ValueError, match="a must be 2-D, got 1-D"):
        matmul(a[0], b)


def test_out_is_never_the_c_path() -> None:
    a, b = operands(8, 8, 8, np.float32)
    out = np.empty((8, 8), np.float32)
    assert matmul(a, b, out=out) is out
    assert_gemm_close(out, a, b)


def test_matmul_is_the_c_entry_and_hands_other_calls_to_the_checked_path() -> None:
    a, b = operands(3, 4, 5, np.float64)
    assert matmul is kernels._mp.matmul and matmul.__name__ == "matmul"
    assert str(inspect.signature(matmul)) == "(a, b, *, out=None)"
    assert np.array_equal(matmul(a, b, out=None), fast(a, b))
    assert np.array_equal(matmul(a=a, b=b), fast(a, b))  # keywords: the checked path
    assert np.array_equal(matmul(a, b=b), fast(a, b))
    out = np.empty((3, 5))
    assert matmul(a, b, out=out) is out
    for args, kwargs in [((a,), {}), ((a, b, b), {}), ((a, b), {"bogus": 1}), ((), {})]:
        with pytest.raises(TypeError):
            matmul(*args, **kwargs)
    with pytest.raises(ValueError, match="not aligned"):
        matmul(a, a)


def test_wrong_argument_count_is_a_type_error() -> None:
    a, _ = operands(2, 2, 2, np.float32)
    with pytest.raises(TypeError, match="two arguments"):
        fast(a)  # type: ignore[call-arg]


def test_a_lying_subclass_is_declined_before_any_attribute_is_read() -> None:
    calls: list[str] = []

    def lie(name: str, value: object) -> property:
        def get(self: object) -> object:
            calls.append(name)
            return value

        return property(get)

    liar = type("Liar", (np.ndarray,), {"shape": lie("shape", (2, 100_000)),
                                        "dtype": lie("dtype", np.dtype(np.float64))})
    a: Array = np.eye(2, dtype=np.float32).view(liar)
    b = np.ones((2, 3), np.float32)
    assert fast(a, b) is NotImplemented
    assert calls == []
    assert np.array_equal(matmul(a, b), np.ones((2, 3), np.float32))


def test_another_thread_reassigning_shape_never_desynchronises_the_kernel() -> None:
    a = np.arange(64 * 64, dtype=np.float32).reshape(64, 64) / 4096
    b = np.eye(64, dtype=np.float32)
    stop = threading.Event()
    errors: list[str] = []

    def reshape_forever() -> None:
        shapes = [(64, 64), (1, 4096), (4096, 1), (32, 128), (64, 64)]
        i = 0
        while not stop.is_set():
            a.shape = shapes[i % len(shapes)]
            i += 1

    flipper = threading.Thread(target=reshape_forever)
    flipper.start()
    try:
        for _ in range(3000):
            try:
                c = matmul(a, b)
            except ValueError as exc:
                errors.append(str(exc))
                continue
            assert c.shape == (64, 64)  # the one shape whose product with b is defined
            assert np.array_equal(c, np.arange(64 * 64, dtype=np.float32).reshape(64, 64) / 4096)
    finally:
        stop.set()
        flipper.join(timeout=10)
    assert not flipper.is_alive()
    assert all("not aligned" in error for error in errors), errors[:3]


def test_concurrent_threads_below_and_above_the_gil_threshold() -> None:
    cases = [operands(m, k, n, dtype, seed=i) for i, (m, k, n, dtype) in enumerate(
        [(64, 64, 64, np.float32), (1, 256, 128, np.float32), (128, 128, 128, np.float64),
         (8, 1024, 256, np.float32), (33, 65, 17, np.float64), (200, 100, 90, np.float32)])]
    work_sizes = [a.shape[0] * a.shape[1] * b.shape[1] for a, b in cases]
    assert min(work_sizes) < kernels._mp.GIL_MINSIZE <= max(work_sizes)  # both sides of it
    expected = [matmul(a, b) for a, b in cases]
    failures: list[str] = []

    def work(offset: int) -> None:
        for i in range(60):
            j = (i + offset) % len(cases)
            if not np.array_equal(matmul(*cases[j]), expected[j]):
                failures.append(f"case {j}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert failures == []

"""nexpo.kernels: matmul and linear against numpy (float64 reference), errors, layouts, threads."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import psutil
import pytest

import nexpo
from nexpo import kernels
from nexpo._info import kernel_stats
from nexpo.kernels import linear, matmul

Array = npt.NDArray[Any]
DTYPES = [np.float32, np.float64]


def reference(a: Array, b: Array) -> Array:
    return np.asarray(a, dtype=np.float64) @ np.asarray(b, dtype=np.float64)


def assert_close(c: Array, a: Array, b: Array, factor: float = 4.0) -> None:
    """|C - C_ref| <= factor * k * eps * (|A| |B|) elementwise (the classic GEMM error bound)."""
    eps = np.finfo(c.dtype).eps
    k = a.shape[1]
    bound = factor * max(k, 1) * eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    err = np.abs(c.astype(np.float64) - reference(a, b))
    assert c.shape == (a.shape[0], b.shape[1])
    assert np.all(err <= bound + np.finfo(np.float64).tiny), float(np.max(err - bound))


def random(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> Array:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# --- matmul: values ---------------------------------------------------------------------------

SHAPES = [(1, 1, 1), (2, 3, 4), (14, 32, 32), (15, 33, 65), (16, 300, 70), (17, 64, 64), (30, 27, 1024),
          (64, 64, 64), (100, 257, 129), (300, 20, 300), (513, 31, 7)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
def test_matmul_matches_numpy_on_every_isa(isa: str, dtype: Any, m: int, k: int, n: int) -> None:
    a, b = random((m, k), dtype, 1), random((k, n), dtype, 2)
    c = matmul(a, b)
    assert c.dtype == dtype
    assert c.flags.c_contiguous
    assert_close(c, a, b)


VIEWS: dict[str, Callable[[Array], Array]] = {
    "C": lambda x: x,
    "F": np.asfortranarray,
    "transposed": lambda x: np.ascontiguousarray(x.T).T,
    "reversed rows": lambda x: np.ascontiguousarray(x[::-1])[::-1],
    "reversed both": lambda x: np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1],
    "every other column": lambda x: np.repeat(x, 2, axis=1)[:, ::2],
    "sliced from a bigger array": lambda x: np.pad(x, 3)[3:-3, 3:-3],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("view_a", list(VIEWS))
@pytest.mark.parametrize("view_b", list(VIEWS))
def test_matmul_accepts_any_strides_without_copying(dtype: Any, view_a: str, view_b: str) -> None:
    a0, b0 = random((37, 45), dtype, 3), random((45, 70), dtype, 4)
    a, b = VIEWS[view_a](a0), VIEWS[view_b](b0)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
    assert_close(matmul(a, b), a, b)


def test_matmul_of_a_misaligned_view_is_still_right() -> None:
    raw = np.zeros(8 * 40 + 1, dtype=np.uint8)
    a = raw[1:].view(np.float64).reshape(8, 5)  # data not 8-byte aligned
    a[...] = random((8, 5), np.float64)
    b = random((5, 3), np.float64)
    assert_close(matmul(a, b), a, b)


def test_matmul_with_zero_strides_from_broadcasting() -> None:
    a = np.broadcast_to(np.arange(5.0), (4, 5))
    b = random((5, 6), np.float64)
    assert_close(matmul(a, b), a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_skinny_and_narrow_paths(isa: str, dtype: Any) -> None:
    for m, k, n in [(8, 1024, 1024), (1, 500, 333), (16, 40, 1000), (400, 300, 64), (200, 70, 1)]:
        a, b = random((m, k), dtype, 5), random((k, n), dtype, 6)
        assert_close(matmul(a, b), a, b)
        assert_close(matmul(a, np.asfortranarray(b)), a, b)


SMALL_VIEWS_B: dict[str, Callable[[Array], Array]] = {
    "C": lambda x: x,
    "reversed rows": lambda x: np.ascontiguousarray(x[::-1])[::-1],
    "sliced from a bigger array": lambda x: np.pad(x, 3)[3:-3, 3:-3],
    "F": np.asfortranarray,  # columns not contiguous: not the small path, the same answer
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", range(1, 10))
def test_small_row_counts_match_numpy_on_every_isa(isa: str, dtype: Any, m: int) -> None:
    """m <= 8 takes the small path (one tile of all rows, A and B read in place): every row
    count, k across its k blocks, n across wide, one-vector and ragged tiles, A and B views."""
    rng = np.random.default_rng(m)
    for k, n in [(1, 1), (7, 15), (64, 16), (256, 17), (257, 100), (600, 129), (33, 257)]:
        a0, b0 = random((m, k), dtype, int(rng.integers(1 << 16))), random((k, n), dtype, k + n)
        for view_b in SMALL_VIEWS_B.values():
            assert_close(matmul(a0, view_b(b0)), a0, b0)
        a_t = np.ascontiguousarray(a0.T).T  # A read through a column-major view
        assert_close(matmul(a_t, b0), a0, b0)
        assert_close(matmul(np.pad(a0, 2)[2:-2, 2:-2], b0), a0, b0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_narrow_products_take_row_groups_on_every_isa(isa: str, dtype: Any) -> None:
    """n <= one vector (a classifier's last layer): groups of 8 rows on the small path, the
    ragged B panel copied once per k block; a large one splits its rows between threads."""
    for m, k, n in [(64, 128, 10), (45, 300, 16), (1000, 33, 3), (19, 7, 1), (2048, 1024, 5)]:
        a, b = random((m, k), dtype, m), random((k, n), dtype, n)
        assert_close(matmul(a, b), a, b)
        assert_close(matmul(np.ascontiguousarray(a.T).T, np.pad(b, 2)[2:-2, 2:-2]), a, b)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("activation", [None, "relu", "softmax"])
def test_small_path_epilogue_and_column_split(threads: int, activation: str | None) -> None:
    """A large small-m product splits its columns between threads; bias and activations (softmax
    over whole rows) are applied the same way whatever the split."""
    previous = nexpo.get_num_threads()
    nexpo.set_num_threads(threads)
    try:
        for m, k, n in [(1, 64, 10), (3, 1024, 1030), (8, 1024, 1024)]:
            x, w = random((m, k), np.float32, 7), random((k, n), np.float32, 8)
            bias = random((n,), np.float32, 9)
            want = reference(x, w) + bias
            if activation == "relu":
                want = np.maximum(want, 0)
            elif activation == "softmax":
                e = np.exp(want - want.max(axis=1, keepdims=True))
                want = e / e.sum(axis=1, keepdims=True)
            got = linear(x, w, bias, activation=activation)
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4 * np.abs(want).max())
    finally:
        nexpo.set_num_threads(previous)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_matmul_is_the_same_on_any_thread_count(threads: int) -> None:
    previous = nexpo.get_num_threads()
    try:
        nexpo.set_num_threads(threads)
        a, b = random((301, 257), np.float32, 7), random((257, 190), np.float32, 8)
        assert_close(matmul(a, b), a, b)
    finally:
        nexpo.set_num_threads(previous)


# --- matmul: out= -----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_out_receives_the_result_in_place(dtype: Any) -> None:
    a, b = random((20, 30), dtype), random((30, 40), dtype, 1)
    out = np.full((20, 40), np.nan, dtype=dtype)
    result = matmul(a, b, out=out)
    assert result is out
    assert_close(out, a, b)


def test_out_that_overlaps_an_input_gives_the_right_answer() -> None:
    a = random((30, 30), np.float64)
    expected = reference(a, a)
    matmul(a, a, out=a)
    np.testing.assert_allclose(a, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (np.empty((3, 5), np.float32), "dtype float64"),
        (np.empty((5, 3)), r"shape \(3, 5\)"),
        (np.empty((5, 3)).T, "C-contiguous"),
        (np.empty((3, 10))[:, ::2], "C-contiguous"),
    ],
)
def test_bad_out_raises_value_error(out: Array, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        matmul(np.ones((3, 4)), np.ones((4, 5)), out=out)


def test_read_only_out_raises_value_error() -> None:
    out = np.empty((2, 2))
    out.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        matmul(np.ones((2, 2)), np.ones((2, 2)), out=out)


def test_out_that_is_not_an_array_raises_type_error() -> None:
    with pytest.raises(TypeError, match=r"out must be a numpy\.ndarray"):
        matmul(np.ones((2, 2)), np.ones((2, 2)), out=[[0.0, 0.0], [0.0, 0.0]])  # type: ignore[arg-type]


# --- matmul: errors, edge values --------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.complex128, np.float16, object, np.bool_])
def test_other_dtypes_raise_type_error(dtype: Any) -> None:
    good = np.ones((2, 2))
    bad = np.ones((2, 2), dtype=dtype)
    with pytest.raises(TypeError, match="a must have dtype float32 or float64"):
        matmul(bad, good)
    with pytest.raises(TypeError, match="b must have dtype float32 or float64"):
        matmul(good, bad)


def test_non_native_byte_order_raises_type_error() -> None:
    with pytest.raises(TypeError, match="a must have dtype float32 or float64"):
        matmul(np.ones((2, 2), dtype=">f8"), np.ones((2, 2)))


def test_mixed_dtypes_raise_type_error() -> None:
    with pytest.raises(TypeError, match="same dtype, got float32 and float64"):
        matmul(np.ones((2, 2), np.float32), np.ones((2, 2)))


def test_non_arrays_raise_type_error() -> None:
    with pytest.raises(TypeError, match=r"a must be a numpy\.ndarray"):
        matmul([[1.0]], np.ones((1, 1)))  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(3,), (2, 2, 2), ()])
def test_not_2d_raises_value_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="a must be 2-D"):
        matmul(np.ones(shape), np.ones((2, 2)))
    with pytest.raises(ValueError, match="b must be 2-D"):
        matmul(np.ones((2, 2)), np.ones(shape))


def test_shape_mismatch_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(4, 5\) are not aligned"):
        matmul(np.ones((2, 3)), np.ones((4, 5)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "k", "n"), [(0, 3, 4), (3, 0, 4), (3, 4, 0), (0, 0, 0), (0, 5, 0)])
def test_zero_sized_dimensions(dtype: Any, m: int, k: int, n: int) -> None:
    c = matmul(np.ones((m, k), dtype), np.ones((k, n), dtype))
    np.testing.assert_array_equal(c, np.zeros((m, n), dtype))
    assert c.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_and_inf_propagate_as_in_numpy(isa: str, dtype: Any) -> None:
    a = random((20, 30), dtype)
    b = random((30, 40), dtype, 1)
    a[3, 7] = np.nan
    a[5, 2] = np.inf
    b[4, 9] = -np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        expected = a.astype(np.float64) @ b.astype(np.float64)
    c = matmul(a, b)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(c), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(c), np.isneginf(expected))


def test_kernel_counters_count_each_call_once() -> None:
    before = kernel_stats()
    matmul(np.ones((2, 3)), np.ones((3, 4)))
    linear(np.ones((2, 3)), np.ones((3, 4)), activation="relu")
    after = kernel_stats()
    assert after["matmul"]["calls"] == before["matmul"]["calls"] + 1
    assert after["matmul"]["bytes"] == before["matmul"]["bytes"] + (6 + 12 + 8) * 8
    assert after["linear"]["calls"] == before["linear"]["calls"] + 1


# --- linear -----------------------------------------------------------------------------------

def _erf(x: Array) -> Array:
    return np.vectorize(math.erf)(x)


def _softmax(z: Array) -> Array:
    shifted = np.exp(z - z.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


ACTIVATION_REFERENCE: dict[str | None, Callable[[Array], Array]] = {
    None: lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "gelu": lambda z: 0.5 * z * (1 + _erf(z / math.sqrt(2))),
    "tanh": np.tanh,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "softmax": _softmax,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(ACTIVATION_REFERENCE))
@pytest.mark.parametrize("shape", [(1, 3, 5), (8, 64, 100), (33, 130, 70), (200, 200, 200)])
def test_linear_matches_numpy(
    isa: str, dtype: Any, activation: str | None, shape: tuple[int, int, int]
) -> None:
    m, k, n = shape
    x, w, bias = random((m, k), dtype, 1), random((k, n), dtype, 2), random((n,), dtype, 3)
    y = linear(x, w, bias, activation)
    expected = ACTIVATION_REFERENCE[activation](reference(x, w) + bias)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    assert y.dtype == dtype
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol * math.sqrt(k))


def test_linear_without_bias_and_with_a_single_row() -> None:
    x, w = random((7,), np.float64), random((7, 4), np.float64, 1)
    y = linear(x, w, activation="relu")
    assert y.shape == (4,)
    np.testing.assert_allclose(y, np.maximum(x @ w, 0), rtol=1e-12, atol=1e-12)


def test_linear_softmax_is_stable_for_huge_logits() -> None:
    x = np.array([[1000.0, -1000.0]], dtype=np.float32)
    w = np.eye(2, dtype=np.float32)
    y = linear(x, w, activation="softmax")
    np.testing.assert_allclose(y, [[1.0, 0.0]])
    y = linear(np.array([[1.0, 1.0]]), np.eye(2) * 800, np.array([0.0, 0.0]), "softmax")
    np.testing.assert_allclose(y, [[0.5, 0.5]])


def test_linear_sigmoid_saturates_without_overflow() -> None:
    y = linear(np.array([[1.0]]), np.array([[-1000.0, 1000.0]]), activation="sigmoid")
    np.testing.assert_array_equal(y, [[0.0, 1.0]])


def test_linear_relu_keeps_nan(isa: str) -> None:
    """On every path: the epilogue's ReLU is a vector blend on the wide ones, NaN must survive it."""
    y = linear(np.array([[np.nan, 1.0]]), np.eye(2), activation="relu")
    assert np.isnan(y[0, 0])
    assert np.isnan(y[0, 1])
    x, bias = np.ones((9, 40), np.float32), np.full(40, -2.0, np.float32)
    bias[[0, 17, 39]] = np.nan
    y32 = linear(x, np.eye(40, dtype=np.float32), bias, activation="relu")
    assert np.array_equal(np.isnan(y32), np.broadcast_to(np.isnan(bias), y32.shape))
    assert np.all(y32[~np.isnan(y32)] == 0)


def test_linear_relu_in_registers_keeps_nan(isa: str) -> None:
    """Full direct-path tiles apply bias + ReLU in registers (gemm.nim fusedEpilogue): NaN in the
    bias or the product survives, negatives clamp, every other element is the product + bias."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((56, 70)).astype(np.float32), rng.standard_normal((70, 96)).astype(np.float32)
    x[3, 5] = np.nan
    bias = rng.standard_normal(96).astype(np.float32)
    bias[[0, 33, 95]] = np.nan
    y = linear(x, w, bias, activation="relu")
    want = np.maximum(x.astype(np.float64) @ w + bias, 0)
    assert np.array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_allclose(y[~np.isnan(y)], want[~np.isnan(want)], rtol=1e-5, atol=1e-4)
    assert np.all(y[~np.isnan(y)] >= 0)


def test_linear_with_strided_inputs_and_bias() -> None:
    x = random((40, 60), np.float32)[::-2, ::3]
    w = np.asfortranarray(random((20, 30), np.float32, 1))
    bias = random((60,), np.float32, 2)[::2]
    y = linear(x, w, bias, "tanh")
    np.testing.assert_allclose(y, np.tanh(reference(x, w) + bias), rtol=1e-5, atol=1e-5)


def test_linear_with_zero_inner_dimension_gives_activation_of_bias() -> None:
    bias = np.array([-1.0, 2.0])
    y = linear(np.ones((3, 0)), np.ones((0, 2)), bias, "relu")
    np.testing.assert_array_equal(y, [[0.0, 2.0]] * 3)


def test_linear_errors() -> None:
    x, w = np.ones((2, 3)), np.ones((3, 4))
    with pytest.raises(ValueError, match="activation must be None or one of relu, gelu"):
        linear(x, w, activation="swish")
    with pytest.raises(TypeError, match="activation must be a str or None"):
        linear(x, w, activation=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        linear(x, w, np.ones(3))
    with pytest.raises(TypeError, match="same dtype"):
        linear(x, w, np.ones(4, np.float32))
    with pytest.raises(TypeError, match="same dtype"):
        linear(x.astype(np.float32), w)
    with pytest.raises(TypeError, match="bias must have dtype float32 or float64"):
        linear(x, w, np.ones(4, np.int64))
    with pytest.raises(TypeError, match=r"weight must be a numpy\.ndarray"):
        linear(x, "w")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(4, 4\) are not aligned"):
        linear(x, np.ones((4, 4)))
    with pytest.raises(ValueError, match="x must be 1-D or 2-D"):
        linear(np.ones((2, 2, 3)), w)
    with pytest.raises(ValueError, match="weight must be 2-D"):
        linear(x, np.ones(3))


def test_public_names() -> None:
    assert set(kernels.__all__) >= {"linear", "matmul"}
    assert nexpo.kernels is kernels


# --- concurrency ------------------------------------------------------------------------------

def test_eight_python_threads_calling_concurrently_get_correct_results() -> None:
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            for i in range(20):
                dtype = DTYPES[(seed + i) % 2]
                a, b = random((50 + seed, 70), dtype, seed), random((70, 90 + i), dtype, seed + 1)
                assert_close(matmul(a, b), a, b)
                y = linear(a, b, activation="relu")
                np.testing.assert_allclose(y, np.maximum(reference(a, b), 0), rtol=1e-4, atol=1e-3)
        except BaseException as exc:  # reported on the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


# --- resources --------------------------------------------------------------------------------

@pytest.mark.rss
def test_no_memory_growth_over_ten_thousand_calls() -> None:
    process = psutil.Process()
    a32, b32 = random((64, 96), np.float32), random((96, 80), np.float32)
    a64, b64 = random((300, 200), np.float64).T, random((300, 50), np.float64)
    out = np.empty((64, 80), np.float32)

    def calls(count: int) -> None:
        for i in range(count):
            matmul(a32, b32, out=out)
            if i % 10 == 0:
                matmul(a64, b64)
                linear(a32, b32, activation="softmax")

    calls(1_000)  # warm up: buffer pool, allocator arenas
    before = process.memory_info().rss
    calls(10_000)
    growth = process.memory_info().rss - before
    assert growth < 8 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 10,000 calls"

"""The matrix-vector path (kernels/gemv.nim): a 1 x k row times a k x n matrix of 1 MiB or more
streams B's rows into blocks of y. Values, views, the column split and the epilogue against numpy."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import nexpo
from nexpo.kernels import linear, matmul

Array = npt.NDArray[Any]
DTYPES = [np.float32, np.float64]
# (k, n): B from 1 MiB up; k not a multiple of the 4 rows of a pass, n across several y blocks,
# ragged ends and column parts that are not a whole number of vectors
SHAPES = [(1024, 1024), (1023, 257), (2049, 130), (9, 40000), (40000, 9), (300, 1001)]
VIEWS: dict[str, Callable[[Array], Array]] = {
    "C": lambda x: x,
    "reversed rows": lambda x: np.ascontiguousarray(x[::-1])[::-1],
    "sliced from a bigger array": lambda x: np.pad(x, 3)[3:-3, 3:-3],
    "every other row": lambda x: np.repeat(x, 2, axis=0)[::2],
}


def random(shape: tuple[int, ...], dtype: Any, seed: int) -> Array:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def assert_close(c: Array, a: Array, b: Array) -> None:
    """Within the GEMM error bound |C - C_ref| <= 4·k·eps·(|A||B|), elementwise."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    bound = 4 * a.shape[1] * np.finfo(c.dtype).eps * (np.abs(a64) @ np.abs(b64))
    assert c.shape == (1, b.shape[1])
    assert np.all(np.abs(c - a64 @ b64) <= bound + np.finfo(np.float64).tiny)


@pytest.fixture(params=[1, 2, 3])
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = nexpo.get_num_threads()
    nexpo.set_num_threads(request.param)
    try:
        yield request.param
    finally:
        nexpo.set_num_threads(previous)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("k", "n"), SHAPES)
def test_row_times_a_large_matrix_matches_numpy_on_every_isa(isa: str, dtype: Any, k: int, n: int) -> None:
    a, b = random((1, k), dtype, k), random((k, n), dtype, n)
    for name, view in VIEWS.items():
        c = matmul(a, view(b))
        assert c.dtype == dtype, name
        assert_close(c, a, b)
    assert_close(matmul(np.repeat(a, 3, axis=1)[:, ::3], b), a, b)  # x with a stride


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_column_split_gives_the_same_answer_on_any_thread_count(threads: int, dtype: Any) -> None:
    a, b = random((1, 777), dtype, 1), random((777, 3001), dtype, 2)
    assert_close(matmul(a, b), a, b)


@pytest.mark.parametrize("activation", [None, "relu", "gelu", "softmax"])
def test_bias_and_activation_apply_to_the_whole_row(threads: int, activation: str | None) -> None:
    x, w, bias = (
        random((1, 1024), np.float32, 3),
        random((1024, 1500), np.float32, 4),
        random((1500,), np.float32, 5),
    )
    z = x.astype(np.float64) @ w.astype(np.float64) + bias
    if activation == "relu":
        z = np.maximum(z, 0)
    elif activation == "gelu":
        z = 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    elif activation == "softmax":
        e = np.exp(z - z.max())
        z = e / e.sum()
    got = linear(x, w, bias, activation=activation)
    np.testing.assert_allclose(got, z, rtol=2e-4, atol=2e-4 * np.abs(z).max())


def test_nan_and_inf_in_b_propagate_as_in_numpy() -> None:
    a, b = random((1, 512), np.float32, 6), random((512, 1024), np.float32, 7)
    b[5, 10], b[300, 1000], b[511, 0] = np.nan, np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        want = a @ b
    got = matmul(a, b)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))

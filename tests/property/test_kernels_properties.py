"""Differential tests of nexpo.kernels against numpy (float64 reference) over random shapes,
dtypes, memory layouts and every ISA path: |C - C_ref| <= c·k·eps·(|A||B|) elementwise."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nexpo.kernels import linear, matmul

Array = npt.NDArray[Any]

DIM = st.integers(min_value=1, max_value=300)
LAYOUTS = ["C", "F", "transposed", "reversed", "sliced", "reversed columns"]
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def layout(x: Array, how: str) -> Array:
    """The same values as ``x`` in another memory layout (a view, never a contiguous copy)."""
    if how == "F":
        return np.asfortranarray(x)
    if how == "transposed":
        return np.ascontiguousarray(x.T).T
    if how == "reversed":
        return np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1]
    if how == "sliced":
        big = np.zeros((x.shape[0] * 2, x.shape[1] * 3), dtype=x.dtype)
        big[::2, 1::3] = x
        return big[::2, 1::3]
    if how == "reversed columns":
        return np.ascontiguousarray(x[:, ::-1])[:, ::-1]
    return x


def within_bound(c: Array, a: Array, b: Array, factor: float = 4.0) -> bool:
    eps = np.finfo(c.dtype).eps
    ref = a.astype(np.float64) @ b.astype(np.float64)
    bound = factor * a.shape[1] * eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64))
    return bool(np.all(np.abs(c.astype(np.float64) - ref) <= bound))


DTYPE = st.sampled_from([np.float32, np.float64])
SEED = st.integers(0, 2**32 - 1)


@SETTINGS
@given(
    shape=st.tuples(DIM, DIM, DIM),
    dtype=DTYPE,
    layouts=st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS)),
    use_out=st.booleans(),
    seed=SEED,
)
def test_matmul_matches_numpy_float64(
    isa: str, shape: tuple[int, int, int], dtype: Any, layouts: tuple[str, str], *, use_out: bool, seed: int
) -> None:
    m, k, n = shape
    layout_a, layout_b = layouts
    rng = np.random.default_rng(seed)
    a0 = rng.standard_normal((m, k)).astype(dtype)
    b0 = rng.standard_normal((k, n)).astype(dtype)
    a, b = layout(a0, layout_a), layout(b0, layout_b)
    out = np.full((m, n), np.nan, dtype=dtype) if use_out else None
    c = matmul(a, b, out=out)
    if out is not None:
        assert c is out
    assert c.flags.c_contiguous
    assert c.dtype == dtype
    assert within_bound(c, a0, b0)


def softmax(z: Array) -> Array:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@SETTINGS
@given(
    shape=st.tuples(st.integers(1, 64), st.integers(0, 200), st.integers(1, 200)),
    dtype=DTYPE,
    activation=st.sampled_from([None, "relu", "tanh", "sigmoid", "softmax"]),
    with_bias=st.booleans(),
    seed=SEED,
)
def test_linear_matches_numpy(
    isa: str, shape: tuple[int, int, int], dtype: Any, activation: str | None, *, with_bias: bool, seed: int
) -> None:
    m, k, n = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, k)).astype(dtype)
    w = np.asfortranarray(rng.standard_normal((k, n)).astype(dtype))
    bias = rng.standard_normal(n).astype(dtype) if with_bias else None
    z = x.astype(np.float64) @ w.astype(np.float64) + (0 if bias is None else bias.astype(np.float64))
    expected = {
        None: z,
        "relu": np.maximum(z, 0),
        "tanh": np.tanh(z),
        "sigmoid": 1 / (1 + np.exp(-z)),
        "softmax": softmax(z),
    }[activation]
    tol = 2e-4 if dtype == np.float32 else 1e-10
    y = linear(x, w, bias, activation)
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol * (1 + np.sqrt(k)))

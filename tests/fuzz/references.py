"""Reference answers for the fuzzer, from numpy, scipy, hashlib and the RFC definitions."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import erf

Array = npt.NDArray[Any]


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- RFC 9162 §2.1 ----------------------------------------------------------------------------


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return sha(b"")
    if len(leaves) == 1:
        return sha(b"\x00" + leaves[0])
    k = _split(len(leaves))
    return sha(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(index: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*path(index, leaves[:k]), mth(leaves[k:])]
    return [*path(index - k, leaves[k:]), mth(leaves[:k])]


# --- GEMM with a fused epilogue ---------------------------------------------------------------


def activate(z: Array, activation: str | None) -> Array:
    if activation == "relu":
        return np.maximum(z, 0)
    if activation == "gelu":
        return 0.5 * z * (1 + erf(z / np.sqrt(2)))
    if activation == "tanh":
        return np.tanh(z)
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if activation == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True)) if z.shape[-1] else z
        return e / e.sum(axis=-1, keepdims=True) if z.shape[-1] else e
    return z


def gemm_close(got: Any, a: Array, b: Array, bias: Array | None = None, activation: str | None = None,
               *, dtype: Any = None) -> str | None:
    """None when ``got`` is activation(a @ b + bias) within the GEMM error bound, else why not."""
    if not isinstance(got, np.ndarray):
        return f"returned {type(got).__name__}, not an ndarray"
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(all="ignore"):
        z = a64 @ b64 + (0 if bias is None else bias.astype(np.float64))
        ref = activate(z, activation)
        eps = float(np.finfo(dtype or a.dtype).eps)
        k = a.shape[1]
        scale = np.abs(a64) @ np.abs(b64) + (0 if bias is None else np.abs(bias.astype(np.float64)))
        bound = 8 * max(k, 1) * eps * scale + 16 * eps * (1 + np.abs(ref))
    if got.dtype != (dtype or a.dtype) or got.shape != ref.shape:
        return f"got {got.dtype}{got.shape}, want {np.dtype(dtype or a.dtype)}{ref.shape}"
    g = got.astype(np.float64)
    if not np.array_equal(np.isnan(g), np.isnan(ref)):
        return "NaN in different places"
    finite = np.isfinite(ref)
    if not np.array_equal(g[~finite & ~np.isnan(ref)], ref[~finite & ~np.isnan(ref)]):
        return "infinities differ"
    with np.errstate(all="ignore"):
        err = np.abs(g - ref)
    bad = finite & ~(err <= bound)
    if bad.any():
        return f"{int(bad.sum())} elements off by up to {float(np.max(err[bad])):.3g}"
    return None

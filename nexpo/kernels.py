"""Dense linear algebra on the Nim GEMM: ``matmul`` and the fused ``linear`` layer.

Both take float32 or float64 numpy arrays of any strides or order (transposed, sliced, reversed,
Fortran) without copying them: the Nim kernel packs straight from their memory. Results are
C-contiguous. Integer, complex, object, float16 and mixed dtypes raise ``TypeError``: nothing is
ever cast silently.

The kernel runs without the GIL and trusts the shapes and strides it is given, so they come
from a private plain-ndarray view of each argument, taken in one C call: neither an ndarray
subclass (whose ``shape``, ``strides``, ``dtype`` or ``flags`` may be overriding properties) nor
another thread reassigning ``a.shape`` or ``a.dtype`` mid-call can make them disagree with the
memory the kernel reads. The common ``matmul(a, b)`` (two plain aligned C-contiguous 2-D arrays)
takes them from the arrays' buffer exports instead, in nexpo/_matmulpath.c, which keeps the GIL
for products under ``GIL_MINSIZE`` multiply-adds, where releasing it costs more than it frees.

``linear`` computes ``activation(x @ weight + bias)`` in one pass: the bias and the activation
are applied to each tile of the result while it is still in cache. Activations:

- ``"relu"``: ``max(x, 0)`` (NaN stays NaN, as ``numpy.maximum``)
- ``"gelu"``: the exact erf form ``0.5 * x * (1 + erf(x / sqrt(2)))`` (PyTorch's default
  ``nn.GELU()``), not the tanh approximation
- ``"tanh"``, ``"sigmoid"``
- ``"softmax"``: over the last axis, numerically stable (shifted by the row maximum)
"""

from __future__ import annotations

from types import NotImplementedType
from typing import Any, Final, Protocol, cast

import numpy as np
import numpy.typing as npt

from nexpo._native import NULL, CData, check, ffi, lib, load_sibling_module

__all__ = ["ACTIVATIONS", "linear", "matmul"]

FloatArray = npt.NDArray[np.floating[Any]]

# keyed by dtype.char: a cheaper lookup than hashing the dtype on every call
_DTYPE_CODES: Final = {"f": lib.NEXPO_F32, "d": lib.NEXPO_F64}
_ACTIVATION_CODES: Final = {
    None: lib.NEXPO_ACT_NONE,
    "relu": lib.NEXPO_ACT_RELU,
    "gelu": lib.NEXPO_ACT_GELU,
    "tanh": lib.NEXPO_ACT_TANH,
    "sigmoid": lib.NEXPO_ACT_SIGMOID,
    "softmax": lib.NEXPO_ACT_SOFTMAX,
}
ACTIVATIONS: Final = ("relu", "gelu", "tanh", "sigmoid", "softmax")


class _Matmul(Protocol):
    def __call__(self, a: FloatArray, b: FloatArray, *, out: FloatArray | None = None) -> FloatArray: ...


class _MatmulPath(Protocol):
    """``nexpo._matmulpath`` (nexpo/_matmulpath.c). ``plain`` returns the product of two exact
    ndarrays that are 2-D, aligned, C-contiguous and of one native float dtype, described by
    their buffer exports; NotImplemented for anything else (and when the native call fails). The
    GIL is released when m·n·k >= GIL_MINSIZE. ``matmul`` is this module's public ``matmul``: it
    takes ``matmul(a, b)`` through ``plain`` and hands every other call, and every
    NotImplemented, to the callable given to ``set_fallback`` (``_matmul_checked``)."""

    GIL_MINSIZE: int
    matmul: _Matmul

    def plain(self, a: object, b: object, /) -> FloatArray | NotImplementedType: ...
    def set_fallback(self, fn: _Matmul, /) -> None: ...


_mp: Final[_MatmulPath] = load_sibling_module("nexpo._matmulpath")


def _private_view(obj: object, name: str, what: str = "a numpy.ndarray") -> FloatArray:
    """A new plain ``numpy.ndarray`` over ``obj``'s memory that no other code holds.

    Its shape, strides and dtype are copied from numpy's C struct in one call, so they stay
    consistent however the caller's object changes meanwhile. ``type()`` rather than
    ``isinstance`` (which a ``__class__`` property can fool), and ``np.asarray`` for a subclass
    rather than its ``.view()`` (which it can override): no Python code of the subclass runs.
    """
    cls = type(obj)
    if cls is np.ndarray:
        return cast(FloatArray, obj).view()
    if not issubclass(cls, np.ndarray):
        raise TypeError(f"{name} must be {what}, not {cls.__name__}")
    return np.asarray(obj)


def _float_array(obj: object, name: str) -> FloatArray:
    if type(obj) is np.ndarray:  # _private_view's common case, without the call
        arr: FloatArray = obj.view()
    else:
        arr = _private_view(obj, name, "a numpy.ndarray of float32 or float64")
    if arr.dtype.char not in _DTYPE_CODES or arr.dtype.byteorder == ">":
        raise TypeError(f"{name} must have dtype float32 or float64, not {arr.dtype} (nexpo never casts)")
    return arr


def _same_dtype(names: str, *arrays: FloatArray) -> None:
    first = arrays[0].dtype.char
    if any(arr.dtype.char != first for arr in arrays[1:]):
        got = " and ".join(str(arr.dtype) for arr in arrays)
        raise TypeError(f"{names} must have the same dtype, got {got} (nexpo never casts)")


def _two_d(arr: FloatArray, name: str) -> None:
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got {arr.ndim}-D with shape {arr.shape}")


def _operand(arr: FloatArray) -> tuple[CData, int, int]:
    """(pointer to element [0, 0], row stride, column stride), strides in elements.

    ``arr`` is a private view (see ``_private_view``). Any view works as is, including negative
    and zero strides; only a view whose strides are not whole elements, or whose data is
    misaligned, is copied first. A contiguous operand's pointer holds a buffer export; a
    strided one is a bare address, valid while the caller holds ``arr`` (numpy refuses to
    resize memory that a view or an export still references).
    """
    flags = arr.flags
    if flags.aligned:
        if flags.c_contiguous:
            return ffi.from_buffer(arr), arr.shape[1], 1
        if flags.f_contiguous:
            return ffi.from_buffer(arr.T), 1, arr.shape[0]
    item = arr.itemsize
    rs, cs = arr.strides
    if rs % item or cs % item or not flags.aligned:
        arr = np.array(arr, order="C", copy=True)  # a fresh allocation is aligned
        return ffi.from_buffer(arr), arr.shape[1], 1
    return ffi.cast("void *", arr.__array_interface__["data"][0]), rs // item, cs // item


def _check_out(out: object, shape: tuple[int, int], dtype: np.dtype[Any]) -> FloatArray:
    """A plain-ndarray view of ``out`` that the kernel may write ``shape`` elements into."""
    out = _private_view(out, "out")
    if out.dtype != dtype:
        raise ValueError(f"out must have dtype {dtype}, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"out must have shape {shape}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if not out.flags.aligned:
        raise ValueError("out must be aligned to its element size")
    return out


def _gemm(
    x: FloatArray,
    w: FloatArray,
    out: FloatArray | None,
    bias: FloatArray | None,
    activation: int | None,
) -> FloatArray:
    m, k = x.shape
    n = w.shape[1]
    dtype = x.dtype
    code = _DTYPE_CODES[dtype.char]
    result = np.empty((m, n), dtype=dtype) if out is None else out
    # Writing into memory that an input still reads from would corrupt the input mid-product.
    overlaps = out is not None and (np.may_share_memory(out, x) or np.may_share_memory(out, w))
    target = np.empty((m, n), dtype=dtype) if overlaps else result
    xp, rsx, csx = _operand(x)
    wp, rsw, csw = _operand(w)
    op = ffi.from_buffer(target)  # writable: fresh, or checked by _check_out on a plain view
    if activation is None:
        check(lib.nexpo_matmul(code, m, n, k, xp, rsx, csx, wp, rsw, csw, op, n))
    else:
        bp = NULL if bias is None else ffi.from_buffer(bias)
        check(lib.nexpo_linear(code, m, n, k, xp, rsx, csx, wp, rsw, csw, bp, activation, op, n))
    if overlaps:
        result[...] = target
    return result


def _matmul_checked(a: FloatArray, b: FloatArray, *, out: FloatArray | None = None) -> FloatArray:
    """``matmul`` for every call its C entry does not take: any view, ``out=``, and the errors."""
    a = _float_array(a, "a")
    b = _float_array(b, "b")
    _same_dtype("a and b", a, b)
    _two_d(a, "a")
    _two_d(b, "b")
    if a.shape[1] != b.shape[0]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
            f"a.shape[1] ({a.shape[1]}) != b.shape[0] ({b.shape[0]})"
        )
    if out is None:
        return _gemm(a, b, None, None, None)
    _gemm(a, b, _check_out(out, (a.shape[0], b.shape[1]), a.dtype), None, None)
    return out  # the caller's object (its memory now holds the product)


_mp.set_fallback(_matmul_checked)

matmul: Final[_Matmul] = _mp.matmul
"""``a @ b`` for 2-D float32 or float64 arrays of the same dtype; the result is C-contiguous.

``out``, when given, receives the result in place and is returned; it must be C-contiguous with
shape ``(a.shape[0], b.shape[1])`` and the inputs' dtype (``ValueError`` otherwise). Raises
``TypeError`` for non-float or mixed dtypes and ``ValueError`` for arrays that are not 2-D or
whose inner dimensions differ.

It is a C function (nexpo/_matmulpath.c): at n = 64 the product takes a few microseconds, so a
Python wrapper's own cost would count. It takes the common call (two plain aligned C-contiguous
2-D ndarrays of one float dtype, no ``out``) itself, and hands anything else to
``_matmul_checked`` with its arguments as given.
"""


def linear(
    x: FloatArray,
    weight: FloatArray,
    bias: FloatArray | None = None,
    activation: str | None = None,
) -> FloatArray:
    """``activation(x @ weight + bias)`` fused in one pass; returns a new C-contiguous array.

    ``x`` is ``(batch, in_features)`` or a single row ``(in_features,)`` (the result is then
    1-D); ``weight`` is ``(in_features, out_features)``; ``bias`` is ``(out_features,)`` or None;
    ``activation`` is None or one of ``ACTIVATIONS``. All arrays share one dtype, float32 or
    float64 (``TypeError`` otherwise); shape mismatches and unknown activations raise
    ``ValueError``.
    """
    x = _float_array(x, "x")
    weight = _float_array(weight, "weight")
    if bias is not None:
        bias = _float_array(bias, "bias")
        _same_dtype("x, weight and bias", x, weight, bias)
    else:
        _same_dtype("x and weight", x, weight)
    if activation is not None and not isinstance(activation, str):
        raise TypeError(f"activation must be a str or None, not {type(activation).__name__}")
    if activation not in _ACTIVATION_CODES:
        raise ValueError(f"activation must be None or one of {', '.join(ACTIVATIONS)}, not {activation!r}")
    if x.ndim not in (1, 2):
        raise ValueError(f"x must be 1-D or 2-D, got {x.ndim}-D with shape {x.shape}")
    _two_d(weight, "weight")
    x2 = x.reshape(1, -1) if x.ndim == 1 else x
    if x2.shape[1] != weight.shape[0]:
        raise ValueError(
            f"linear: shapes {x.shape} and {weight.shape} are not aligned: "
            f"x.shape[-1] ({x2.shape[1]}) != weight.shape[0] ({weight.shape[0]})"
        )
    n = weight.shape[1]
    if bias is not None:
        if bias.shape != (n,):
            raise ValueError(f"bias must have shape ({n},) to match weight {weight.shape}, got {bias.shape}")
        if not (bias.flags.c_contiguous and bias.flags.aligned):
            bias = np.array(bias, order="C", copy=True)
    result = _gemm(x2, weight, None, bias, _ACTIVATION_CODES[activation])
    return result.reshape(n) if x.ndim == 1 else result

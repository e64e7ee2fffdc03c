"""Elementwise operators: unary maps, broadcasting binary ops and comparisons, Where, Cast, Not.

Each folds with numpy when its inputs are constants, else emits one instruction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nexpo.inference._model import Node
from nexpo.inference._plan import (
    BOOL,
    DTYPE_CODES,
    F32,
    I64,
    OP_BINARY,
    OP_CAST,
    OP_NOT,
    OP_UNARY,
    OP_WHERE,
    Builder,
    Value,
)
from nexpo.inference._registry import (
    broadcast_shape,
    emit_broadcast,
    invalid,
    op,
    require,
    unsupported,
)

__all__ = ["emit_unary"]

# kinds of nim/nexpo_core/kernels/elementwise.nim
(
    U_IDENTITY,
    U_NEG,
    U_ABS,
    U_EXP,
    U_LOG,
    U_SQRT,
    U_RECIPROCAL,
    U_ERF,
    U_TANH,
    U_SIGMOID,
    U_RELU,
    U_LEAKY,
    U_CLIP,
    U_GELU,
    U_GELU_TANH,
    U_HARD_SIGMOID,
    U_HARD_SWISH,
    U_SCALE,
    U_NOT,
    U_FLOOR,
    U_CEIL,
) = range(21)

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x: Any) -> Any:
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


UNARY: dict[str, tuple[int, Callable[..., Any]]] = {
    "Identity": (U_IDENTITY, lambda x: x),
    "Neg": (U_NEG, np.negative),
    "Abs": (U_ABS, np.abs),
    "Exp": (U_EXP, np.exp),
    "Log": (U_LOG, np.log),
    "Sqrt": (U_SQRT, np.sqrt),
    "Reciprocal": (U_RECIPROCAL, np.reciprocal),
    "Erf": (U_ERF, _erf),
    "Tanh": (U_TANH, np.tanh),
    "Sigmoid": (U_SIGMOID, _sigmoid),
    "Relu": (U_RELU, lambda x: np.maximum(x, 0)),
    "Floor": (U_FLOOR, np.floor),
    "Ceil": (U_CEIL, np.ceil),
    "HardSwish": (U_HARD_SWISH, lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
}


def emit_unary(b: Builder, kind: int, x: Value, alpha: float = 0.0, beta: float = 0.0) -> Value:
    out = b.new(F32, x.shape)
    b.emit(OP_UNARY, kind, x.size, float(alpha), float(beta), b.ref(x), b.ref(out))
    return out


def _unary(
    b: Builder,
    node: Node,
    x: Value | None,
    kind: int,
    fold: Callable[[Any], Any],
    *,
    alpha: float = 0.0,
    beta: float = 0.0,
) -> list[Value]:
    if x is None:
        raise invalid(node, "input is missing")
    if x.const is not None:
        return [b.const(np.asarray(fold(x.const)).astype(x.dtype))]
    if kind == U_IDENTITY:
        return [x]
    require(node, x, (F32,), "input")
    return [emit_unary(b, kind, x, alpha, beta)]


@op(*UNARY)
def unary(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    kind, fold = UNARY[node.op_type]
    return _unary(b, node, ins[0], kind, fold)


@op("Dropout", attrs=("seed", "ratio", "is_test"))
def dropout(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    if len(ins) > 2 and ins[2] is not None and (ins[2].const is None or bool(ins[2].const)):
        raise unsupported(node, "training_mode must be a constant false")
    x = ins[0]
    assert x is not None
    if len(node.outputs) > 1 and node.outputs[1]:
        return [x, b.const(np.ones(x.shape, dtype=bool))]
    return [x]


@op("LeakyRelu", attrs=("alpha",))
def leaky_relu(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    a = float(node.attrs.get("alpha", 0.01))
    return _unary(b, node, ins[0], U_LEAKY, lambda x: np.where(x < 0, a * x, x), alpha=a)


@op("HardSigmoid", attrs=("alpha", "beta"))
def hard_sigmoid(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    a = float(node.attrs.get("alpha", 0.2))
    c = float(node.attrs.get("beta", 0.5))
    return _unary(b, node, ins[0], U_HARD_SIGMOID, lambda x: np.clip(a * x + c, 0, 1), alpha=a, beta=c)


@op("Gelu", attrs=("approximate",))
def gelu(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    approx = node.attrs.get("approximate", "none")
    if approx not in ("none", "tanh"):
        raise unsupported(node, f"approximate={approx!r}")
    kind = U_GELU if approx == "none" else U_GELU_TANH

    def fold(x: Any) -> Any:
        if approx == "none":
            return _gelu(x)
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))

    return _unary(b, node, ins[0], kind, fold)


@op("Clip", attrs=("min", "max"))
def clip(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    lo, hi = float(node.attrs.get("min", -np.inf)), float(node.attrs.get("max", np.inf))
    for i, name in ((1, "min"), (2, "max")):
        if len(ins) > i and ins[i] is not None:
            v = ins[i]
            assert v is not None
            if v.const is None:
                raise unsupported(node, f"{name} must be a constant")
            if i == 1:
                lo = float(v.const)
            else:
                hi = float(v.const)
    return _unary(b, node, ins[0], U_CLIP, lambda x: np.clip(x, lo, hi), alpha=lo, beta=hi)


# kinds of BinaryKind in elementwise.nim, with the numpy fold
BINARY: dict[str, tuple[int, Callable[..., Any]]] = {
    "Add": (0, np.add),
    "Sub": (1, np.subtract),
    "Mul": (2, np.multiply),
    "Div": (3, np.divide),
    "Pow": (4, np.power),
    "Max": (5, np.maximum),
    "Min": (6, np.minimum),
    "Equal": (7, np.equal),
    "Less": (8, np.less),
    "Greater": (9, np.greater),
    "LessOrEqual": (10, np.less_equal),
    "GreaterOrEqual": (11, np.greater_equal),
    "And": (12, np.logical_and),
    "Or": (13, np.logical_or),
    "Xor": (14, np.logical_xor),
}
COMPARISONS = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor"}


def _divide(a: Any, b: Any) -> Any:
    if np.issubdtype(np.asarray(a).dtype, np.integer):
        with np.errstate(divide="ignore"):
            q = np.where(b == 0, 0, np.trunc(np.asarray(a, np.float64) / np.where(b == 0, 1, b)))
        return q.astype(np.asarray(a).dtype)
    return np.divide(a, b)


@op(*BINARY)
def binary(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    if node.op_type in ("Max", "Min", "Sum", "Mean") and len(ins) != 2:
        raise unsupported(node, f"{node.op_type} of {len(ins)} inputs (2 are supported)")
    x, y = ins[0], ins[1]
    if x is None or y is None:
        raise invalid(node, "needs two inputs")
    kind, fold = BINARY[node.op_type]
    if node.op_type == "Div":
        fold = _divide
    out_shape = broadcast_shape(node, x.shape, y.shape)
    if x.const is not None and y.const is not None:
        result = np.asarray(fold(x.const, y.const))
        if node.op_type not in COMPARISONS:
            result = result.astype(x.dtype)
        return [b.const(result)]
    if node.op_type == "Pow" and y.dtype != x.dtype and y.const is not None:
        y = b.const(y.const.astype(x.dtype))
    if x.dtype != y.dtype:
        raise invalid(node, f"inputs have different dtypes ({x.dtype}, {y.dtype})")
    if node.op_type in ("And", "Or", "Xor"):
        require(node, x, (BOOL,), "input")
    elif node.op_type == "Pow":
        require(node, x, (F32,), "input")
    else:
        require(node, x, (F32, I64), "input")
    out = b.new(BOOL if node.op_type in COMPARISONS else x.dtype, out_shape)
    emit_broadcast(b, node, [OP_BINARY, kind, DTYPE_CODES[x.dtype]], [x, y], out)
    return [out]


@op("Where")
def where(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    c, x, y = ins
    if c is None or x is None or y is None:
        raise invalid(node, "needs three inputs")
    out_shape = broadcast_shape(node, c.shape, x.shape, y.shape)
    if c.const is not None and x.const is not None and y.const is not None:
        return [b.const(np.where(c.const, x.const, y.const).astype(x.dtype))]
    require(node, c, (BOOL,), "condition")
    if x.dtype != y.dtype:
        raise invalid(node, f"X and Y have different dtypes ({x.dtype}, {y.dtype})")
    require(node, x, (F32, I64, BOOL), "X")
    out = b.new(x.dtype, out_shape)
    emit_broadcast(b, node, [OP_WHERE, x.dtype.itemsize], [c, x, y], out)
    return [out]


@op("Not")
def logical_not(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = require(node, ins[0], (BOOL,), "input")
    if x.const is not None:
        return [b.const(np.logical_not(x.const))]
    out = b.new(BOOL, x.shape)
    b.emit(OP_NOT, U_NOT, x.size, 0.0, 0.0, b.ref(x), b.ref(out))
    return [out]


ONNX_TO_NUMPY = {
    1: np.float32,
    2: np.uint8,
    3: np.int8,
    5: np.int16,
    6: np.int32,
    7: np.int64,
    9: np.bool_,
    10: np.float16,
    11: np.float64,
    12: np.uint32,
    13: np.uint64,
}


@op("Cast", attrs=("to", "saturate"))
def cast(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    to = int(node.attrs.get("to", 0))
    if to not in ONNX_TO_NUMPY:
        raise unsupported(node, f"cast to ONNX type {to}")
    target = np.dtype(ONNX_TO_NUMPY[to])
    x = ins[0]
    if x is None:
        raise invalid(node, "input is missing")
    if x.const is not None:
        return [b.const(x.const.astype(target))]
    if target == x.dtype:
        return [x]
    if target not in DTYPE_CODES:
        raise unsupported(node, f"cast to {target} at run time (float32, int64 and bool are supported)")
    require(node, x, (F32, I64, BOOL), "input")
    out = b.new(target, x.shape)
    b.emit(OP_CAST, DTYPE_CODES[x.dtype], DTYPE_CODES[target], x.size, b.ref(x), b.ref(out))
    return [out]

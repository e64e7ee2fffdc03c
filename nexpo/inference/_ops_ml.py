"""The ``ai.onnx.ml`` operators scikit-learn converters emit for linear models and MLPs, lowered
onto the core instructions: LinearClassifier (GEMM + transform + ArgMax + label lookup),
Normalizer, ArrayFeatureExtractor. ZipMap is refused with the converter option that avoids it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nexpo.inference._model import Node
from nexpo.inference._ops_elementwise import U_ABS, U_SQRT, emit_unary
from nexpo.inference._ops_linalg import ACT_NONE, ACT_SIGMOID, emit_gemm
from nexpo.inference._ops_reduce import R_ARGMAX, R_MAX, R_SUM, emit_reduce
from nexpo.inference._plan import F32, I64, OP_BINARY, OP_GATHER, OP_SOFTMAX, Builder, Value
from nexpo.inference._registry import emit_broadcast, invalid, op, require, unsupported

__all__: list[str] = []

ML = "ai.onnx.ml"


def _labels(b: Builder, node: Node, index: Value, labels: np.ndarray[Any, Any]) -> Value:
    """labels[index] for int64 run-time indices (skipped when labels are 0..n-1)."""
    if np.array_equal(labels, np.arange(len(labels))):
        return index
    out = b.new(I64, index.shape)
    b.emit(OP_GATHER, 8, 1, len(labels), 1, index.size, b.ref(b.const(labels)), b.ref(index), b.ref(out))
    return out


@op(
    "LinearClassifier",
    domain=ML,
    attrs=(
        "classlabels_ints",
        "classlabels_strings",
        "coefficients",
        "intercepts",
        "multi_class",
        "post_transform",
    ),
)
def linear_classifier(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = require(node, ins[0], (F32,), "X")
    if "classlabels_strings" in node.attrs:
        raise unsupported(node, "string class labels (use integer labels)")
    labels = np.asarray(node.attrs.get("classlabels_ints", []), dtype=np.int64)
    coef = np.asarray(node.attrs.get("coefficients", []), dtype=np.float32)
    classes = len(labels)
    if len(x.shape) == 1:
        x = b.alias(x, (1, x.shape[0]))
    if len(x.shape) != 2:
        raise invalid(node, f"X must be a matrix, got {x.shape}")
    features = x.shape[1]
    if classes < 1 or coef.size != classes * features:
        raise unsupported(
            node,
            f"{coef.size} coefficients for {classes} classes x {features} "
            "features (binary one-row models are not supported)",
        )
    intercepts = np.asarray(node.attrs.get("intercepts", np.zeros(classes)), dtype=np.float32)
    if intercepts.shape != (classes,):
        raise invalid(node, f"intercepts must have {classes} elements")
    transform = node.attrs.get("post_transform", "NONE")
    if transform not in ("NONE", "LOGISTIC", "SOFTMAX"):
        raise unsupported(node, f"post_transform={transform!r}")
    if int(node.attrs.get("multi_class", 0)) not in (0, 1):
        raise unsupported(node, "multi_class must be 0 or 1")
    n = x.shape[0]
    weights = b.const(np.ascontiguousarray(coef.reshape(classes, features).T))
    scores = b.new(F32, (n, classes))
    emit_gemm(
        b,
        (n, classes, features),
        x,
        weights,
        scores,
        a_strides=(features, 1),
        b_strides=(classes, 1),
        bias=b.const(intercepts),
        act=ACT_SIGMOID if transform == "LOGISTIC" else ACT_NONE,
    )
    label = _labels(b, node, emit_reduce(b, node, scores, R_ARGMAX, [1]), labels)
    if transform == "SOFTMAX":
        probs = b.new(F32, (n, classes))
        b.emit(OP_SOFTMAX, n, classes, 1, 0, b.ref(scores), b.ref(probs))
        scores = probs
    return [label, scores]


@op("Normalizer", domain=ML, attrs=("norm",))
def normalizer(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = require(node, ins[0], (F32,), "X")
    norm = node.attrs.get("norm", "MAX")
    if len(x.shape) not in (1, 2):
        raise invalid(node, f"X must be a vector or a matrix, got {x.shape}")
    rows = b.alias(x, (1, x.shape[0]) if len(x.shape) == 1 else x.shape)
    if norm == "MAX":
        total = emit_reduce(b, node, rows, R_MAX, [1])
    elif norm == "L1":
        total = emit_reduce(b, node, emit_unary(b, U_ABS, rows), R_SUM, [1])
    elif norm == "L2":
        squares = b.new(F32, rows.shape)
        emit_broadcast(b, node, [OP_BINARY, 2, 0], [rows, rows], squares)
        total = emit_unary(b, U_SQRT, emit_reduce(b, node, squares, R_SUM, [1]))
    else:
        raise unsupported(node, f"norm={norm!r}")
    out = b.new(F32, rows.shape)
    emit_broadcast(b, node, [OP_BINARY, 3, 0], [rows, b.alias(total, (rows.shape[0], 1))], out)
    return [b.alias(out, x.shape)]


@op("ArrayFeatureExtractor", domain=ML)
def array_feature_extractor(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x, idx = ins[0], ins[1]
    if x is None or idx is None:
        raise invalid(node, "needs X and Y")
    if not x.shape:
        raise invalid(node, "X is a scalar")
    dim = x.shape[-1]
    lead = x.shape[:-1] if len(x.shape) > 1 else (1,)
    if x.const is not None and idx.const is not None:
        if idx.const.size and (idx.const.min() < 0 or idx.const.max() >= dim):
            raise invalid(node, "indices out of range")
        taken = np.take(x.const.reshape(*lead, dim), idx.const.reshape(-1), axis=-1)
        return [b.const(taken)]
    if x.const is not None and x.dtype.kind in "iu":
        x = b.const(x.const.astype(np.int64))  # computed in int64 (outputs are cast back)
    if idx.dtype != I64:
        raise unsupported(node, f"indices of dtype {idx.dtype}")
    if x.dtype not in (F32, I64):
        raise unsupported(node, f"X of dtype {x.dtype}")
    out = b.new(x.dtype, (*lead, idx.size))
    b.emit(
        OP_GATHER, x.dtype.itemsize, int(np.prod(lead)), dim, 1, idx.size, b.ref(x), b.ref(idx), b.ref(out)
    )
    return [out]

"""Reductions: ReduceMean/Sum/Max/Min, ArgMax/ArgMin, GlobalAverage/MaxPool.

The kernel reduces the middle axis of [outer, r, inner]; reduced axes that are not adjacent are
first moved to the end by a transposing copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nexpo.inference._model import Node
from nexpo.inference._ops_shape import emit_transpose
from nexpo.inference._plan import F32, I64, OP_REDUCE, Builder, Value
from nexpo.inference._registry import ints_of, invalid, norm_axis, op, require

__all__ = ["emit_reduce"]

R_SUM, R_MEAN, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN, R_ARGMAX_LAST, R_ARGMIN_LAST = range(8)
KINDS = {"ReduceSum": R_SUM, "ReduceMean": R_MEAN, "ReduceMax": R_MAX, "ReduceMin": R_MIN}
FOLDS: dict[str, Any] = {"ReduceSum": np.sum, "ReduceMean": np.mean, "ReduceMax": np.max, "ReduceMin": np.min}
# the opset from which `axes` is an input instead of an attribute
AXES_INPUT_FROM = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18}


def _prod(xs: Any) -> int:
    return int(np.prod(xs, dtype=np.int64))


def emit_reduce(b: Builder, node: Node, x: Value, kind: int, axes: list[int]) -> Value:
    """Reduce ``x`` over ``axes`` (normalised, sorted); the result has the kept dims only."""
    rank = len(x.shape)
    kept = [d for d in range(rank) if d not in axes]
    if axes and axes != list(range(axes[0], axes[-1] + 1)):
        x = emit_transpose(b, node, x, kept + axes)
        axes = list(range(len(kept), rank))
    shape = x.shape
    lo, hi = (axes[0], axes[-1] + 1) if axes else (rank, rank)
    out_dtype = I64 if kind >= R_ARGMAX else F32
    out = b.new(out_dtype, [x.shape[d] for d in range(rank) if d < lo or d >= hi])
    r = _prod(shape[lo:hi])
    if r == 0 and kind not in (R_SUM, R_MEAN):
        raise invalid(node, "reduction over an empty axis")
    b.emit(OP_REDUCE, kind, _prod(shape[:lo]), r, _prod(shape[hi:]), b.ref(x), b.ref(out))
    return out


def _keepdims(b: Builder, v: Value, shape: tuple[int, ...], axes: list[int], keep: bool) -> Value:
    if not keep:
        return v
    return b.alias(v, [1 if d in axes else shape[d] for d in range(len(shape))])


@op(*KINDS, attrs=("axes", "keepdims", "noop_with_empty_axes"))
def reduce(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = require(node, ins[0], (F32,), "data")
    rank = len(x.shape)
    if node.opset >= AXES_INPUT_FROM[node.op_type]:
        given = ints_of(node, ins[1], "axes") if len(ins) > 1 and ins[1] is not None else []
    else:
        given = [int(a) for a in node.attrs.get("axes", [])]
    if not given and int(node.attrs.get("noop_with_empty_axes", 0)):
        return [x]
    axes = sorted({norm_axis(node, a, rank) for a in given}) if given else list(range(rank))
    keep = bool(int(node.attrs.get("keepdims", 1)))
    if x.const is not None:
        folded = FOLDS[node.op_type](x.const, axis=tuple(axes), keepdims=keep)
        return [b.const(np.asarray(folded, dtype=np.float32))]
    out = emit_reduce(b, node, x, KINDS[node.op_type], axes)
    return [_keepdims(b, out, x.shape, axes, keep)]


@op("ArgMax", "ArgMin", attrs=("axis", "keepdims", "select_last_index"))
def argmax(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = require(node, ins[0], (F32,), "data")
    axis = norm_axis(node, int(node.attrs.get("axis", 0)), len(x.shape))
    keep = bool(int(node.attrs.get("keepdims", 1)))
    last = bool(int(node.attrs.get("select_last_index", 0)))
    is_max = node.op_type == "ArgMax"
    if x.const is not None and not last:
        fold = np.argmax if is_max else np.argmin
        return [b.const(np.asarray(fold(x.const, axis=axis, keepdims=keep), dtype=np.int64))]
    kind = (R_ARGMAX_LAST if last else R_ARGMAX) if is_max else (R_ARGMIN_LAST if last else R_ARGMIN)
    out = emit_reduce(b, node, x, kind, [axis])
    return [_keepdims(b, out, x.shape, [axis], keep)]


@op("GlobalAveragePool", "GlobalMaxPool")
def global_pool(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = require(node, ins[0], (F32,), "X")
    if len(x.shape) < 3:
        raise invalid(node, f"input of shape {x.shape} has no spatial axes")
    axes = list(range(2, len(x.shape)))
    kind = R_MEAN if node.op_type == "GlobalAveragePool" else R_MAX
    out = emit_reduce(b, node, x, kind, axes)
    return [_keepdims(b, out, x.shape, axes, True)]

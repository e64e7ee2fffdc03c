"""MatMul and Gemm on the Nim GEMM, with a following bias Add and activation fused into its
epilogue when nothing else reads the intermediate values."""

from __future__ import annotations

from typing import Any

import numpy as np

from nexpo import _native
from nexpo.inference._model import Node
from nexpo.inference._ops_elementwise import U_SCALE, emit_unary
from nexpo.inference._plan import F32, OP_BINARY, OP_GEMM, Builder, Value
from nexpo.inference._registry import (
    broadcast_shape,
    emit_broadcast,
    invalid,
    op,
    require,
    unsupported,
)

__all__ = ["emit_gemm", "row_bias"]

MAX_BATCH_RANK = 4
# NEXPO_ACT_* of capi/kernels.h, and the executor's own GELU (kernels/activations.nim actGeluVec)
ACT_NONE, ACT_RELU, ACT_GELU, ACT_TANH, ACT_SIGMOID = range(5)
ACT_GELU_VEC = 6
# ReLU, and exact GELU with the vectorised erf (kernels/vmath.nim) the unfused Gelu node runs, so
# the fused result has the same bits; the C ABI's tanh/sigmoid/GELU are libm calls per element,
# slower than the vectorised pass the unfused node gets.
FUSABLE_ACTIVATIONS = {"Relu": ACT_RELU, "Gelu": ACT_GELU_VEC}
# A constant B is packed once at plan time into the active path's float32 B panels (their width
# is the kernel's: _native.gemm_b_panel_width); the executor uses that copy only when the path and
# the width it checks still match (NEXPO_ISA may change), else it packs per call.
# Rows at or below which the GEMM takes its small path, which reads B in place (kernels/common.nim
# smallRows): no packed copy then. Above it, one is kept when it is at most this large.
SMALL_PATH_ROWS = 8
MAX_PACKED_BYTES = 64 << 20


def _packed_weights(
    b: Builder, m: int, bm: Value, b_strides: tuple[int, int]
) -> tuple[int, int, Value | None]:
    """(ISA code, panel width, packed copy) of a constant B the active path's GEMM would pack."""
    isa = _native.isa_active()
    nr = _native.gemm_b_panel_width(isa)
    w = bm.const
    if w is None or w.ndim != 2 or m <= SMALL_PATH_ROWS or nr == 0 or w.dtype != np.float32:
        return -1, 0, None
    k, n = w.shape
    if b_strides != (n, 1) or k == 0 or n <= nr or k * -(-n // nr) * nr * 4 > MAX_PACKED_BYTES:
        return -1, 0, None
    packed = _native.gemm_pack_weights(isa, np.ascontiguousarray(w))
    return _native.ISA_NAMES.index(isa), nr, b.const(packed)


def row_bias(v: Value | None, n: int) -> np.ndarray[Any, Any] | None:
    """``v`` as n bias elements when it is a float32 constant that only varies along the last axis."""
    if v is None or v.const is None or v.dtype != F32:
        return None
    shape = v.shape
    while shape and shape[0] == 1:
        shape = shape[1:]
    if shape not in ((), (1,), (n,)):
        return None
    return np.ascontiguousarray(np.broadcast_to(v.const.reshape(shape), (n,)), dtype=np.float32)


def fuse_epilogue(
    b: Builder, node: Node, out_shape: tuple[int, ...], has_bias: bool
) -> tuple[np.ndarray[Any, Any] | None, int, list[Node]]:
    """A bias Add and/or an activation reading only this node's result: (bias, act, fused nodes)."""
    n = out_shape[-1] if out_shape else 1
    name = node.outputs[0]
    fused: list[Node] = []
    bias = None
    nxt = b.sole_consumer(name)
    if nxt is not None and nxt.op_type == "Add" and not has_bias and len(nxt.inputs) == 2:
        other = nxt.inputs[1] if nxt.inputs[0] == name else nxt.inputs[0]
        v = b.values.get(other)
        bias = row_bias(v, n)
        if bias is not None and v is not None and broadcast_shape(nxt, out_shape, v.shape) == out_shape:
            fused.append(nxt)
            name = nxt.outputs[0]
            nxt = b.sole_consumer(name)
        else:
            bias = None
    act = ACT_NONE
    if nxt is not None and nxt.domain == "" and len(nxt.inputs) == 1:
        if nxt.op_type in FUSABLE_ACTIVATIONS and nxt.attrs.get("approximate", "none") == "none":
            act = FUSABLE_ACTIVATIONS[nxt.op_type]
        if act != ACT_NONE:
            fused.append(nxt)
    return bias, act, fused


def emit_gemm(
    b: Builder,
    mnk: tuple[int, int, int],
    a: Value,
    bm: Value,
    out: Value,
    *,
    a_strides: tuple[int, int],
    b_strides: tuple[int, int],
    bias: Value | None = None,
    act: int = ACT_NONE,
    batch: tuple[list[int], list[int], list[int], list[int]] | None = None,
) -> None:
    """out = act(A·B + bias) (per batch index), A and B read through (row, column) strides."""
    m, n, k = mnk
    isa, nr, packed = _packed_weights(b, m, bm, b_strides) if batch is None else (-1, 0, None)
    shape, sa, sb, sc = batch or ([], [], [], [])
    pad = [1] * (MAX_BATCH_RANK - len(shape))
    zero = [0] * (MAX_BATCH_RANK - len(shape))
    b.emit(
        OP_GEMM,
        m,
        n,
        k,
        *a_strides,
        *b_strides,
        n,
        act,
        len(shape),
        *shape,
        *pad,
        *sa,
        *zero,
        *sb,
        *zero,
        *sc,
        *zero,
        b.ref(a),
        b.ref(bm),
        None if bias is None else b.ref(bias),
        b.ref(out),
        isa,
        nr,
        None if packed is None else b.ref(packed),
    )


def _finish(b: Builder, fused: list[Node], out: Value) -> list[Value]:
    for f in fused:
        b.fuse(f, out)
    return [out]


def _matrix_strides(shape: tuple[int, ...], batch: tuple[int, ...]) -> list[int]:
    """Batch strides (elements) of a contiguous (*batch', r, c) tensor viewed at ``batch``."""
    own = (1,) * (len(batch) - (len(shape) - 2)) + shape[:-2]
    step = shape[-1] * shape[-2]
    strides = []
    for d in range(len(batch) - 1, -1, -1):
        strides.append(0 if own[d] == 1 and batch[d] != 1 else step)
        step *= own[d]
    return strides[::-1]


@op("MatMul")
def matmul(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    x = require(node, ins[0], (F32,), "A")
    y = require(node, ins[1], (F32,), "B")
    if x.const is not None and y.const is not None:
        return [b.const(np.matmul(x.const, y.const).astype(np.float32))]
    if not x.shape or not y.shape:
        raise invalid(node, "MatMul of a scalar")
    xs = (1, *x.shape) if len(x.shape) == 1 else x.shape
    ys = (*y.shape, 1) if len(y.shape) == 1 else y.shape
    m, k = xs[-2], xs[-1]
    k2, n = ys[-2], ys[-1]
    if k != k2:
        raise invalid(node, f"inner dimensions differ: A is {x.shape}, B is {y.shape}")
    batch = broadcast_shape(node, xs[:-2], ys[:-2])
    full = (*batch, m, n)
    out_shape = list(full)
    if len(x.shape) == 1:
        out_shape.pop(-2)
    if len(y.shape) == 1:
        out_shape.pop(-1)
    bias_arr, act, fused = fuse_epilogue(b, node, tuple(out_shape), False)
    bias = None if bias_arr is None else b.const(bias_arr)
    out = b.new(F32, out_shape)
    x2 = b.alias(x, xs)
    y2 = b.alias(y, ys)
    if int(np.prod(ys[:-2], dtype=np.int64)) == 1 and xs[:-2] == batch:
        rows = int(np.prod(batch, dtype=np.int64)) * m  # B shared: one tall GEMM
        emit_gemm(b, (rows, n, k), x2, y2, out, a_strides=(k, 1), b_strides=(n, 1), bias=bias, act=act)
        return _finish(b, fused, out)
    sa, sb = _matrix_strides(xs, batch), _matrix_strides(ys, batch)
    sc = _matrix_strides(full, batch)
    keep = [d for d in range(len(batch)) if batch[d] != 1]
    if len(keep) > MAX_BATCH_RANK:
        raise unsupported(node, f"{len(keep)} batch dimensions (at most {MAX_BATCH_RANK})")
    emit_gemm(
        b,
        (m, n, k),
        x2,
        y2,
        out,
        a_strides=(k, 1),
        b_strides=(n, 1),
        bias=bias,
        act=act,
        batch=([batch[d] for d in keep], [sa[d] for d in keep], [sb[d] for d in keep], [sc[d] for d in keep]),
    )
    return _finish(b, fused, out)


@op("Gemm", attrs=("alpha", "beta", "transA", "transB"))
def gemm(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
    a = require(node, ins[0], (F32,), "A")
    w = require(node, ins[1], (F32,), "B")
    c = ins[2] if len(ins) > 2 else None
    alpha = float(node.attrs.get("alpha", 1.0))
    beta = float(node.attrs.get("beta", 1.0))
    ta, tb = int(node.attrs.get("transA", 0)), int(node.attrs.get("transB", 0))
    if len(a.shape) != 2 or len(w.shape) != 2:
        raise invalid(node, f"A and B must be matrices, got {a.shape} and {w.shape}")
    m, k = (a.shape[1], a.shape[0]) if ta else a.shape
    k2, n = (w.shape[1], w.shape[0]) if tb else w.shape
    if k != k2:
        raise invalid(
            node, f"inner dimensions differ: A is {a.shape}, B is {w.shape} (transA={ta}, transB={tb})"
        )
    if c is not None:
        require(node, c, (F32,), "C")
        broadcast_shape(node, (m, n), c.shape)
        if broadcast_shape(node, (m, n), c.shape) != (m, n):
            raise invalid(node, f"C of shape {c.shape} does not broadcast to {(m, n)}")
    if tb and w.const is not None:  # pre-transpose a constant B: the GEMM then reads rows in place
        w, tb = b.const(np.ascontiguousarray(w.const.T)), 0
    if alpha != 1.0 and w.const is not None:
        w, alpha = b.const(w.const * np.float32(alpha)), 1.0
    bias_arr = None
    if c is not None and beta != 0.0 and alpha == 1.0:
        bias_arr = row_bias(c, n)
        if bias_arr is not None:
            bias_arr = bias_arr * np.float32(beta)
    post_bias = c is not None and beta != 0.0 and bias_arr is None
    bias_fused, act, fused = (
        (None, ACT_NONE, [])
        if post_bias or alpha != 1.0
        else fuse_epilogue(b, node, (m, n), bias_arr is not None)
    )
    if bias_fused is not None:
        bias_arr = bias_fused
    out = b.new(F32, (m, n))
    emit_gemm(
        b,
        (m, n, k),
        a,
        w,
        out,
        a_strides=(1, m) if ta else (k, 1),
        b_strides=(1, k) if tb else (n, 1),
        bias=None if bias_arr is None else b.const(bias_arr),
        act=act,
    )
    if alpha != 1.0:
        out = emit_unary(b, U_SCALE, out, alpha, 0.0)
    if post_bias:
        assert c is not None
        if beta != 1.0:
            c = (
                b.const(c.const * np.float32(beta))
                if c.const is not None
                else emit_unary(b, U_SCALE, c, beta, 0.0)
            )
        total = b.new(F32, (m, n))
        emit_broadcast(b, node, [OP_BINARY, 0, 0], [out, c], total)
        out = total
    return _finish(b, fused, out)

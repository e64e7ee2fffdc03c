"""Self-attention's Q, K and V projections as one GEMM, for the fused attention (_attention.py).

The pattern, per projection (each intermediate read by the next node only)::

    Transpose(Reshape(Add(MatMul(x, W), b), shape))      W, b constant; the same x for all three

When the attention's three head-split Transposes read such projections of one ``x`` of shape
[N, S, d], the weights are concatenated at plan time into one [d, wq + wk + wv] matrix (packed
once like any constant B) and its bias, and one GEMM writes the [N·S, wq + wk + wv] result; the
attention kernel reads Q, K and V as strided views of it (row stride wq + wk + wv), so x is read
once and there is one parallel GEMM instead of three. The sums are those of the three GEMMs.
Anything else (another x per projection, a non-constant weight or bias, a bias that broadcasts
beyond x·W's shape, a reshape to other than [N, S, heads, width]) keeps the projections planned
one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nexpo.inference._model import Node
from nexpo.inference._ops_linalg import emit_gemm, row_bias
from nexpo.inference._plan import F32, Builder, Ref, Value

__all__ = ["Projection", "Projections", "match_projections", "plan_projections"]


@dataclass
class Projection:
    matmul: Node
    add: Node
    reshape: Node

    def nodes(self) -> list[Node]:
        return [self.matmul, self.add, self.reshape]


Projections = list[Projection]  # q, k, v
# (shape [N, S, heads, width] of q, k, v; a callable that emits the GEMM and returns their
# operands: (ref, (batch, head, row) element strides) each)
Planned = tuple[list[tuple[int, ...]], Callable[[Builder], list[tuple[Ref, tuple[int, int, int]]]]]


def match_projections(b: Builder, names: list[str], readers: list[Node]) -> Projections | None:
    """The projections making ``names`` (each read by its ``reader`` only), or None."""
    producers = b.graph.producers

    def sole(name: str, reader: Node, op_type: str) -> Node | None:
        node = producers.get(name)
        users = b.graph.consumers.get(name, [])
        if node is None or node.domain != "" or node.op_type != op_type or name in b.outputs:
            return None
        return node if len(users) == 1 and users[0] is reader else None

    found: Projections = []
    for name, reader in zip(names, readers, strict=True):
        reshape = sole(name, reader, "Reshape")
        if reshape is None or len(reshape.inputs) != 2:
            return None
        add = sole(reshape.inputs[0], reshape, "Add")
        if add is None or len(add.inputs) != 2:
            return None
        sides = [sole(x, add, "MatMul") for x in add.inputs]
        if (sides[0] is None) == (sides[1] is None):
            return None
        matmul = sides[0] or sides[1]
        assert matmul is not None
        if len(matmul.inputs) != 2 or matmul.inputs[1] not in b.graph.initializers:
            return None
        found.append(Projection(matmul, add, reshape))
    if len({p.matmul.inputs[0] for p in found}) != 1:
        return None
    if any(id(n) in b.skipped for p in found for n in p.nodes()):
        return None
    return found


def plan_projections(b: Builder, projections: Projections) -> Planned | None:
    """Shapes and the emitter of the fused projections, None when the values do not fit."""
    x = b.values[projections[0].matmul.inputs[0]]
    if x.dtype != F32 or x.const is not None or len(x.shape) != 3 or 0 in x.shape:
        return None
    n, s, d = x.shape
    weights, biases, shapes = [], [], []
    for p in projections:
        w = b.values[p.matmul.inputs[1]].const
        if w is None or w.dtype != np.float32 or w.ndim != 2 or w.shape[0] != d or w.shape[1] == 0:
            return None
        width = int(w.shape[1])
        other = b.values[p.add.inputs[0] if p.add.inputs[1] == p.matmul.outputs[0] else p.add.inputs[1]]
        bias = row_bias(other, width) if len(other.shape) <= 3 else None
        target = _reshaped(b, p.reshape, (n, s, width))
        if bias is None or target is None or target[:2] != (n, s) or target[2] * target[3] != width:
            return None
        weights.append(w)
        biases.append(bias)
        shapes.append(target)
    total = sum(int(w.shape[1]) for w in weights)

    def emit(b: Builder) -> list[tuple[Ref, tuple[int, int, int]]]:
        out = b.new(F32, (n * s, total))
        w = b.const(np.concatenate(weights, axis=1))
        bias = b.const(np.concatenate(biases))
        emit_gemm(b, (n * s, total, d), x, w, out, a_strides=(d, 1), b_strides=(total, 1), bias=bias)
        operands, at = [], 0
        for shape in shapes:
            ref = b.ref(out)
            ref.offset = at * 4
            operands.append((ref, (s * total, shape[3], total)))
            at += shape[2] * shape[3]
        return operands

    return shapes, emit


def _reshaped(b: Builder, node: Node, shape: tuple[int, int, int]) -> tuple[int, ...] | None:
    """The 4-d shape Reshape ``node`` makes of a ``shape`` tensor (its rules: 0 copies, -1 infers)."""
    v: Value | None = b.values.get(node.inputs[1])
    if v is None or v.const is None or v.const.dtype != np.int64 or v.const.ndim != 1 or v.size != 4:
        return None
    target = [int(t) for t in v.const]
    if not int(node.attrs.get("allowzero", 0)):
        target = [shape[i] if t == 0 and i < 3 else t for i, t in enumerate(target)]
    if target.count(-1) > 1 or any(t < -1 or t == 0 for t in target):
        return None
    size = shape[0] * shape[1] * shape[2]
    if -1 in target:
        known = int(np.prod([t for t in target if t != -1]))
        if size % known:
            return None
        target[target.index(-1)] = size // known
    return tuple(target) if int(np.prod(target)) == size else None

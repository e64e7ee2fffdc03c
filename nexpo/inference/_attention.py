"""Multi-head attention fused into one instruction (kernels/attention.nim).

The pattern, as exporters write it (each intermediate read by the next node only)::

    Q = Transpose(q, perm=[0,2,1,3])        q: [N, Sq, H, dk]   (a Reshape of a projection)
    K = Transpose(k, perm=[0,2,3,1])        k: [N, Sk, H, dk]
    V = Transpose(v, perm=[0,2,1,3])        v: [N, Sk, H, dv]
    S = MatMul(Q, K) [Mul by / Div by a constant scalar] [Add a float mask]
    O = MatMul(Softmax(S, axis=-1), V) [Transpose(perm=[0,2,1,3])]

The kernel reads q, k, v where the projections wrote them and writes O in the merged
[N, Sq, H, dv] layout when the last Transpose is there, so no head transposes are copied and
the scores are never stored. Self-attention's three projections of one input are one GEMM
(_attention_projections.py) whose result the kernel reads q, k and v from. The matched nodes
are deferred to the final MatMul; if the shapes found at plan time do not fit (other ranks,
broadcast batch or heads, a non-scalar scale, a mask that does not broadcast, empty dimensions,
huge sequences) they are planned one by one as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nexpo.inference._attention_projections import Projections, match_projections, plan_projections
from nexpo.inference._model import Node
from nexpo.inference._plan import F32, OP_ATTENTION, Builder, Handler, Value
from nexpo.inference._registry import contiguous_strides

__all__ = ["defer_attention"]

SPLIT, KEYS_T = [0, 2, 1, 3], [0, 2, 3, 1]
LANES, BLOCK_ROWS = 16, 4  # kernels/attention.nim
MAX_SCRATCH_FLOATS = 1 << 21  # one head's local panels (8 MiB); longer sequences run unfused


@dataclass
class Match:
    q: Node  # the three head-split Transposes
    k: Node
    v: Node
    scores: Node  # MatMul(Q, K)
    scale: Node | None  # Mul or Div by a scalar
    mask: Node | None  # Add of a mask
    softmax: Node
    out: Node  # MatMul(P, V)
    merge: Node | None  # Transpose back to [N, Sq, H, dv]
    projections: Projections | None = None  # q, k, v's, when they can be one GEMM

    def deferred(self) -> list[Node]:
        nodes = [self.q, self.k, self.v, self.scores, self.scale, self.mask, self.softmax]
        first = [n for p in self.projections or [] for n in p.nodes()]
        return first + [n for n in nodes if n is not None]


def defer_attention(b: Builder) -> None:
    """Find every attention pattern in the graph and defer its nodes to its last MatMul."""
    for node in b.graph.nodes:
        m = _match(b, b.graph.producers, node)
        if m is not None and not any(id(n) in b.skipped for n in m.deferred()):
            heads = [m.q, m.k, m.v]
            m.projections = match_projections(b, [n.inputs[0] for n in heads], heads)
            b.defer(m.deferred(), m.out, _planner(m))


def _match(b: Builder, producers: dict[str, Node], out: Node) -> Match | None:
    def only_reader(name: str, reader: Node) -> bool:
        users = b.graph.consumers.get(name, [])
        return len(users) == 1 and users[0] is reader and name not in b.outputs

    def made_by(name: str, reader: Node, *ops: str) -> Node | None:
        node = producers.get(name)
        if node is None or node.domain != "" or node.op_type not in ops or not only_reader(name, reader):
            return None
        return node

    def transpose(name: str, reader: Node, perm: list[int]) -> Node | None:
        node = made_by(name, reader, "Transpose")
        return node if node is not None and [int(p) for p in node.attrs.get("perm", [])] == perm else None

    if out.op_type != "MatMul" or out.domain != "" or len(out.inputs) != 2:
        return None
    softmax = made_by(out.inputs[0], out, "Softmax")
    if softmax is None or int(softmax.attrs.get("axis", -1 if softmax.opset >= 13 else 1)) not in (-1, 3):
        return None

    def scaled_scores(name: str, reader: Node) -> tuple[Node | None, Node] | None:
        """(Mul/Div or None, MatMul) making ``name``."""
        scale = made_by(name, reader, "Mul", "Div")
        if scale is not None:
            sides = scale.inputs[:1] if scale.op_type == "Div" else scale.inputs
            found = [x for x in sides if made_by(x, scale, "MatMul") is not None]
            return (scale, producers[found[0]]) if len(found) == 1 else None
        matmul = made_by(name, reader, "MatMul")
        return None if matmul is None else (None, matmul)

    mask = made_by(softmax.inputs[0], softmax, "Add")
    if mask is None:
        found = scaled_scores(softmax.inputs[0], softmax)
    else:  # the scores are the side a (scaled) MatMul makes; the other side is the mask
        sides = [scaled_scores(x, mask) for x in mask.inputs]
        found = sides[0] if sides[1] is None else sides[1] if sides[0] is None else None
    if found is None:
        return None
    scale, scores = found
    if len(scores.inputs) != 2:
        return None
    q = transpose(scores.inputs[0], scores, SPLIT)
    k = transpose(scores.inputs[1], scores, KEYS_T)
    v = transpose(out.inputs[1], out, SPLIT)
    if q is None or k is None or v is None or not only_reader(softmax.outputs[0], out):
        return None
    users = b.graph.consumers.get(out.outputs[0], [])
    merge = None
    if len(users) == 1 and out.outputs[0] not in b.outputs and users[0].op_type == "Transpose":
        perm = [int(p) for p in users[0].attrs.get("perm", [])]
        merge = users[0] if perm == SPLIT and users[0].domain == "" else None
    return Match(q, k, v, scores, scale, mask, softmax, out, merge)


def _planner(m: Match) -> Handler:
    def plan(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
        fused = _emit(b, m)
        if fused is not None:
            return [fused]
        return b.run_unfused(m.deferred(), node)  # the shapes do not fit: every node as it is

    return plan


def _scalar(b: Builder, m: Match) -> float | None:
    """The factor the scores are multiplied by (1 without a Mul/Div), None if it is not a scalar."""
    if m.scale is None:
        return 1.0
    other = [n for n in m.scale.inputs if n != m.scores.outputs[0]]
    if len(other) != 1 or (m.scale.op_type == "Div" and m.scale.inputs[1] != other[0]):
        return None
    v = b.values[other[0]]
    if v.const is None or v.dtype != F32 or v.size != 1 or len(v.shape) > 4:
        return None
    x = float(v.const.reshape(-1)[0])
    if m.scale.op_type == "Div":
        return None if x == 0.0 else float(np.float32(1.0) / np.float32(x))
    return x


def _emit(b: Builder, m: Match) -> Value | None:
    planned = None if m.projections is None else plan_projections(b, m.projections)
    if planned is not None:
        shapes = planned[0]
    else:
        if m.projections is not None:  # they do not fit one GEMM: each is planned as it is
            _plan_each(b, [n for p in m.projections for n in p.nodes()])
            m.projections = None
        values = [b.values[n.inputs[0]] for n in (m.q, m.k, m.v)]
        if any(x.dtype != F32 or len(x.shape) != 4 for x in values):
            return None
        shapes = [x.shape for x in values]
    n, sq, h, dk = shapes[0]
    sk, dv = shapes[1][1], shapes[2][3]
    if shapes[1] != (n, sk, h, dk) or shapes[2] != (n, sk, h, dv) or 0 in (n, sq, h, dk, sk, dv):
        return None
    scratch = dk * _lanes(sk) + sk * _lanes(dv) + BLOCK_ROWS * _lanes(sk)
    scale = _scalar(b, m)
    if scale is None or scratch > MAX_SCRATCH_FLOATS:
        return None
    scores = (n, h, sq, sk)
    mask, mask_strides = None, [0, 0, 0, 0]
    if m.mask is not None:
        other = [x for x in m.mask.inputs if x != (m.scale or m.scores).outputs[0]]
        mask = b.values[other[0]] if len(other) == 1 else None
        if mask is None or mask.dtype != F32 or len(mask.shape) > 4:
            return None
        padded = (1,) * (4 - len(mask.shape)) + mask.shape
        if any(d not in (1, s) for d, s in zip(padded, scores, strict=True)):
            return None
        mask_strides = [0 if d == 1 else st for d, st in zip(padded, contiguous_strides(padded), strict=True)]
    if m.merge is not None:
        out = b.new(F32, (n, sq, h, dv))
        out_strides = [sq * h * dv, dv, h * dv]
    else:
        out = b.new(F32, (n, h, sq, dv))
        out_strides = [h * sq * dv, sq * dv, dv]
    if planned is not None:
        (qr, qs), (kr, ks), (vr, vs) = planned[1](b)
    else:  # q [N, Sq, H, dk] ...: (batch, head, row) strides
        qr, kr, vr = (b.ref(x) for x in values)
        qs, ks, vs = (sq * h * dk, dk, h * dk), (sk * h * dk, dk, h * dk), (sk * h * dv, dv, h * dv)
    b.emit(
        OP_ATTENTION, n, h, sq, sk, dk, dv, scale, *qs, *ks, *vs, *out_strides, *mask_strides,
        qr, kr, vr, None if mask is None else b.ref(mask), b.ref(out),
    )  # fmt: skip
    if m.merge is not None:
        b.fuse(m.merge, out)
    return out


def _plan_each(b: Builder, nodes: list[Node]) -> None:
    for n in nodes:
        b.skipped.discard(id(n))
    for n in nodes:
        if id(n) not in b.skipped:  # (a handler may have fused a later one)
            b.run(n)


def _lanes(x: int) -> int:
    return (x + LANES - 1) // LANES * LANES

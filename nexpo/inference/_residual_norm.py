"""A residual connection's Add fused into the LayerNormalization that reads it.

``LayerNormalization(Add(x, y))`` with x and y float32 tensors of one shape, the sum read by
nothing else, is one instruction: the kernel adds each row into the output row and normalises it
there (kernels/norm.nim), instead of writing the sum and reading it back. Other Adds (broadcast
operands, other dtypes) are planned as they are.
"""

from __future__ import annotations

from nexpo.inference._model import Node
from nexpo.inference._ops_nn import emit_layer_norm
from nexpo.inference._plan import F32, Builder, Handler, Value

__all__ = ["defer_residual_norm"]


def defer_residual_norm(b: Builder) -> None:
    for norm in b.graph.nodes:
        if norm.op_type != "LayerNormalization" or norm.domain != "" or not norm.inputs:
            continue
        add = b.graph.producers.get(norm.inputs[0])
        if add is None or add.op_type != "Add" or add.domain != "" or len(add.inputs) != 2:
            continue
        users = b.graph.consumers.get(add.outputs[0], [])
        if len(users) != 1 or add.outputs[0] in b.outputs or id(add) in b.skipped:
            continue
        if id(norm) in b.deferred:
            continue
        b.defer([add], norm, _planner(add))


def _planner(add: Node) -> Handler:
    def plan(b: Builder, node: Node, ins: list[Value | None]) -> list[Value]:
        x, y = (b.values[n] for n in add.inputs)
        if x.dtype == F32 and y.dtype == F32 and x.shape == y.shape and x.shape:
            return [emit_layer_norm(b, node, x, ins, residual=y)]
        return b.run_unfused([add], node)

    return plan
